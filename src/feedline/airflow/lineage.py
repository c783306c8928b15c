"""OpenLineage events for a feed's per-file tasks: raw object → clean Parquet → warehouse table.

The transform task reports the raw object it read (rows, bytes) and the Parquet files it wrote (clean
rows with their schema, rejected rows); the load task reports that Parquet and the table it went into
(the table's schema, the rows this file added). Both go out through the OpenLineage provider's
adapter, to whatever transport Airflow's `[openlineage]` section configures, as `RUNNING` events of
the task's own OpenLineage run (the run id and parent the provider's listener gives the task), so a
lineage backend merges them into the task's START/COMPLETE events.

Why not the other supported ways. Hook lineage (`get_hook_lineage_collector().add_input_asset(...)`)
carries asset URIs only: the provider turns one into a dataset only when a provider registers a
converter for its scheme (file and s3 here, none for postgres or duckdb) and adds no facet, so neither
the table nor a row count nor a schema would arrive. `inlets`/`outlets` are fixed when the DAG is
parsed, but a mapped task learns its file at run time. The adapter takes full datasets with facets.

Lineage never fails a task: a problem building or sending an event is logged and the task goes on.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from feedline.contract import Feed
from feedline.settings import Settings

if TYPE_CHECKING:
    from openlineage.client.event_v2 import InputDataset, OutputDataset

    from feedline.warehouse.base import Warehouse

log = logging.getLogger(__name__)


def enabled() -> bool:
    """Whether the OpenLineage provider is installed and configured with a transport."""
    try:
        from airflow.providers.openlineage import conf
    except ImportError:
        return False
    return not conf.is_disabled()


def emit_transform(feed: Feed, settings: Settings, ref: dict[str, Any], result: dict[str, Any]) -> None:
    """Lineage of one transform: the raw object → the clean Parquet (and the rejected rows' Parquet)."""
    if result.get("already_loaded") or not enabled():
        return
    try:
        from openlineage.client.event_v2 import InputDataset, OutputDataset
        from openlineage.client.facet_v2 import input_statistics_input_dataset as in_stats

        from feedline.airflow.connections import task_pipeline

        source = InputDataset(
            *dataset_of(task_pipeline(feed, settings).source.url(ref["key"])),
            inputFacets={
                "inputStatistics": in_stats.InputStatisticsInputDatasetFacet(
                    rowCount=int(result["rows_in"]), size=int(ref["size"])
                )
            },
        )
        outputs = [
            OutputDataset(
                *dataset_of(result["clean_uri"]),
                facets={"schema": _schema([(c.name, str(c.type)) for c in feed.columns])},
                outputFacets={"outputStatistics": _out_stats(int(result["rows_out"]))},
            )
        ]
        if result.get("rejected_uri"):
            outputs.append(
                OutputDataset(
                    *dataset_of(result["rejected_uri"]),
                    outputFacets={"outputStatistics": _out_stats(int(result["rows_rejected"]))},
                )
            )
        _emit([source], outputs)
    except Exception:
        log.warning("feed %s: no lineage for the transform of %s", feed.name, ref.get("key"), exc_info=True)


def emit_load(
    feed: Feed, settings: Settings, ref: dict[str, Any], result: dict[str, Any], loaded: dict[str, Any]
) -> None:
    """Lineage of one load: the clean Parquet → the feed's table, with the rows this file added."""
    if loaded.get("already_loaded") or not enabled():
        return
    try:
        from openlineage.client.event_v2 import InputDataset, OutputDataset

        from feedline.airflow.connections import task_pipeline

        warehouse = task_pipeline(feed, settings).warehouse
        parquet = InputDataset(
            *dataset_of(result["clean_uri"]),
            facets={"schema": _schema([(c.name, str(c.type)) for c in feed.columns])},
        )
        namespace, name = table_name(warehouse, feed)
        table = OutputDataset(
            namespace,
            name,
            facets={"schema": _schema(table_columns(warehouse, feed)), "dataSource": _source(namespace)},
            outputFacets={"outputStatistics": _out_stats(int(loaded["rows_loaded"]))},
        )
        _emit([parquet], [table])
    except Exception:
        log.warning("feed %s: no lineage for the load of %s", feed.name, ref.get("key"), exc_info=True)


# --- naming (https://openlineage.io/docs/spec/naming) ----------------------------------------------


def dataset_of(uri: str) -> tuple[str, str]:
    """(namespace, name) of an object: s3://bucket and its key, or `file` and its absolute path."""
    from openlineage.client.naming.dataset import S3, DatasetNaming, LocalFileSystem

    naming: DatasetNaming
    if uri.startswith("s3://"):
        bucket, _, key = uri.removeprefix("s3://").partition("/")
        naming = S3(bucket_name=bucket, object_key=key or "/")
    else:
        naming = LocalFileSystem(path=str(Path(uri.removeprefix("file://")).resolve()))
    return naming.get_namespace(), naming.get_name()


def table_name(warehouse: Warehouse, feed: Feed) -> tuple[str, str]:
    """(namespace, name) of the feed's table. PostgreSQL and Redshift follow the OpenLineage naming
    spec; DuckDB has no entry there, so: duckdb://<absolute file path>, <database>.<schema>.<table>."""
    from feedline.warehouse.duckdb import DuckDBWarehouse
    from feedline.warehouse.postgres import PostgresWarehouse
    from feedline.warehouse.redshift import RedshiftWarehouse

    ref = warehouse.target(feed)
    if isinstance(warehouse, DuckDBWarehouse):
        path = warehouse.path.resolve()
        return f"duckdb://{path}", f"{path.stem}.{ref.schema}.{ref.name}"
    if isinstance(warehouse, PostgresWarehouse):
        address, _, database = warehouse.where.partition("/")
        host, _, port = address.rpartition(":")
        if isinstance(warehouse, RedshiftWarehouse):
            return f"redshift://{_redshift_cluster(host)}:{port}", f"{database}.{ref.schema}.{ref.name}"
        return f"postgres://{host}:{port}", f"{database}.{ref.schema}.{ref.name}"
    raise TypeError(f"no OpenLineage naming for {type(warehouse).__name__}")


def _redshift_cluster(host: str) -> str:
    """cluster.region from an endpoint <cluster>.<id>.<region>.redshift[-serverless].amazonaws.com."""
    parts = host.split(".")
    if len(parts) > 3 and parts[3].startswith("redshift"):
        return f"{parts[0]}.{parts[2]}"
    return host


def table_columns(warehouse: Warehouse, feed: Feed) -> list[tuple[str, str]]:
    """The table's columns with their SQL types: the contract's, then the lineage columns."""
    from feedline.contract import ColumnType
    from feedline.warehouse.base import contract_columns
    from feedline.warehouse.dialect import FILE_ID_COLUMN, LOADED_AT_COLUMN

    d = warehouse.dialect
    columns = [(c.name, d.column_type(c.type)) for c in contract_columns(feed)]
    columns.append((FILE_ID_COLUMN, d.column_type(ColumnType("string"))))
    columns.append((LOADED_AT_COLUMN, d.column_type(ColumnType("timestamp"))))
    return columns


# --- facets and the event --------------------------------------------------------------------------


def _schema(columns: list[tuple[str, str]]) -> Any:
    from openlineage.client.facet_v2 import schema_dataset

    return schema_dataset.SchemaDatasetFacet(
        fields=[schema_dataset.SchemaDatasetFacetFields(name=name, type=kind) for name, kind in columns]
    )


def _out_stats(rows: int) -> Any:
    from openlineage.client.facet_v2 import output_statistics_output_dataset as out_stats

    return out_stats.OutputStatisticsOutputDatasetFacet(rowCount=rows)


def _source(namespace: str) -> Any:
    from openlineage.client.facet_v2 import datasource_dataset

    return datasource_dataset.DatasourceDatasetFacet(name=namespace, uri=namespace)


def _emit(inputs: list[InputDataset], outputs: list[OutputDataset]) -> None:
    """Send one RUNNING event on the current task's OpenLineage run, child of its DAG run's."""
    from airflow.providers.openlineage import conf
    from airflow.providers.openlineage.plugins.adapter import OpenLineageAdapter
    from airflow.providers.openlineage.plugins.macros import lineage_job_name, lineage_run_id
    from airflow.providers.openlineage.utils.utils import get_task_parent_run_facet
    from airflow.sdk import get_current_context
    from openlineage.client.event_v2 import Job, Run, RunEvent, RunState

    context = get_current_context()
    ti, dag_run = context["ti"], context["dag_run"]
    parent_run_id = OpenLineageAdapter.build_dag_run_id(
        dag_id=ti.dag_id,
        logical_date=dag_run.logical_date or dag_run.run_after,
        clear_number=getattr(dag_run, "clear_number", 0) or 0,
    )
    parent = get_task_parent_run_facet(
        parent_run_id=parent_run_id, parent_job_name=ti.dag_id, dr_conf=dag_run.conf or {}
    )
    event = RunEvent(
        eventType=RunState.RUNNING,
        eventTime=datetime.now(UTC).isoformat(),
        run=Run(runId=lineage_run_id(ti), facets=parent),
        job=Job(namespace=conf.namespace(), name=lineage_job_name(ti)),
        inputs=list(inputs),
        outputs=list(outputs),
    )
    OpenLineageAdapter().emit(event)
