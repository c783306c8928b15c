"""OpenLineage from a feed DAG run (`dag.test()`), written by the provider's file transport: the raw
object → clean Parquet → table, with row counts and schemas, on the task runs the provider names."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import pytest

from feedline.sample import write_orders_csv
from feedline.stack import Stack
from support import age

pytestmark = pytest.mark.airflow

NAMESPACE = "feedline_test"


def _reset_openlineage_conf() -> None:
    """The provider caches its configuration per process: forget it, so the environment is read again."""
    from airflow.providers.openlineage import conf

    for value in vars(conf).values():
        if callable(getattr(value, "cache_clear", None)):
            value.cache_clear()


@pytest.fixture
def events(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """OpenLineage on, every event appended as one JSON line to a file."""
    path = tmp_path / "openlineage.jsonl"
    transport = {"type": "file", "log_file_path": str(path), "append": True}
    monkeypatch.setenv("AIRFLOW__OPENLINEAGE__TRANSPORT", json.dumps(transport))
    monkeypatch.setenv("AIRFLOW__OPENLINEAGE__NAMESPACE", NAMESPACE)
    _reset_openlineage_conf()
    yield path
    _reset_openlineage_conf()  # the environment is restored after this: read it again next time


@pytest.fixture
def project(airflow_project: Stack) -> Path:
    shutil.rmtree(airflow_project.project / "data", ignore_errors=True)
    return airflow_project.project


def _dag(project: Path) -> Any:
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(project / "dags"), safe_mode=False)
    assert bag.import_errors == {}
    return bag.get_dag("feed_orders")


def _ours(path: Path, task: str) -> dict[str, Any]:
    """The one RUNNING event feedline sent for `task` (the listener's own events are START/COMPLETE)."""
    lines = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    found = [e for e in lines if e["eventType"] == "RUNNING" and e["job"]["name"] == f"feed_orders.{task}"]
    assert len(found) == 1, [(e["eventType"], e["job"]["name"]) for e in lines]
    return found[0]


def test_a_run_emits_raw_object_to_parquet_to_table_with_rows_and_schemas(
    project: Path, events: Path
) -> None:
    from airflow.providers.openlineage.plugins.adapter import OpenLineageAdapter

    landing = project / "data" / "landing" / "orders"
    landing.mkdir(parents=True)
    stats = write_orders_csv(landing / "a.csv", rows=300, seed=31)
    age(landing / "a.csv")
    size = (landing / "a.csv").stat().st_size

    run = _dag(project).test()
    assert run.state == "success"

    warehouse = project / "data" / "warehouse.duckdb"
    with duckdb.connect(str(warehouse), read_only=True) as con:
        (file_id, table_rows), *_ = con.sql(
            "select f.file_id, count(*) from orders o join feedline_audit.files f "
            "on f.file_id = o._feedline_file_id group by f.file_id"
        ).fetchall()
    assert table_rows == stats.clean

    transform = _ours(events, "process.transform")
    (raw,) = transform["inputs"]
    assert (raw["namespace"], raw["name"]) == ("file", str((landing / "a.csv").resolve()))
    assert raw["inputFacets"]["inputStatistics"]["rowCount"] == stats.rows
    assert raw["inputFacets"]["inputStatistics"]["size"] == size
    clean, rejected = transform["outputs"]
    processed = project / "data" / "processed" / "orders"
    assert clean["namespace"] == "file" and clean["name"].startswith(str(processed.resolve()))
    assert clean["outputFacets"]["outputStatistics"]["rowCount"] == stats.clean
    assert [f["name"] for f in clean["facets"]["schema"]["fields"]][:3] == [
        "order_id",
        "customer_name",
        "customer_email",
    ]
    assert rejected["name"].endswith(f"{file_id}.parquet")
    assert rejected["outputFacets"]["outputStatistics"]["rowCount"] == stats.bad

    load = _ours(events, "process.load")
    assert [(i["namespace"], i["name"]) for i in load["inputs"]] == [(clean["namespace"], clean["name"])]
    (table,) = load["outputs"]
    assert table["namespace"] == f"duckdb://{warehouse.resolve()}"
    assert table["name"] == "warehouse.main.orders"
    assert table["outputFacets"]["outputStatistics"]["rowCount"] == stats.clean
    fields = {f["name"]: f["type"] for f in table["facets"]["schema"]["fields"]}
    assert fields["order_id"] == "BIGINT" and fields["amount"] == "DECIMAL(12,2)"
    assert fields["ordered_at"] == "TIMESTAMP" and fields["_feedline_file_id"] == "VARCHAR"
    assert table["facets"]["dataSource"]["uri"] == table["namespace"]

    # On the task runs the provider's listener reports (so a backend merges them), children of the run.
    date = run.logical_date or run.run_after
    for event, task in ((transform, "process.transform"), (load, "process.load")):
        assert event["job"]["namespace"] == NAMESPACE
        assert event["run"]["runId"] == OpenLineageAdapter.build_task_instance_run_id(
            dag_id="feed_orders", task_id=task, try_number=1, logical_date=date, map_index=0
        )
        parent = event["run"]["facets"]["parent"]
        assert (parent["job"]["namespace"], parent["job"]["name"]) == (NAMESPACE, "feed_orders")
        assert parent["run"]["runId"] == OpenLineageAdapter.build_dag_run_id(
            dag_id="feed_orders", logical_date=date, clear_number=run.clear_number
        )


def test_without_a_transport_a_run_emits_nothing_and_still_loads(project: Path, tmp_path: Path) -> None:
    from feedline.airflow import lineage

    _reset_openlineage_conf()
    assert not lineage.enabled()
    landing = project / "data" / "landing" / "orders"
    landing.mkdir(parents=True)
    write_orders_csv(landing / "a.csv", rows=50, seed=32)
    age(landing / "a.csv")
    assert _dag(project).test().state == "success"
    assert not list(tmp_path.glob("*.jsonl"))


def test_table_names_follow_the_openlineage_naming_spec(tmp_path: Path) -> None:
    from feedline.airflow.lineage import dataset_of, table_name
    from feedline.contract import load_feed
    from feedline.warehouse.duckdb import DuckDBWarehouse
    from feedline.warehouse.postgres import PostgresWarehouse
    from feedline.warehouse.redshift import RedshiftWarehouse
    from support import REPO

    feed = load_feed(REPO / "feeds" / "orders.yaml")
    role = "arn:aws:iam::123456789012:role/copy"
    cases = {
        PostgresWarehouse("postgresql://u:secret@db.example.com:5433/shop"): (
            "postgres://db.example.com:5433",
            "shop.public.orders",
        ),
        RedshiftWarehouse(
            "redshift://u:secret@analytics.abc123xyz.eu-west-1.redshift.amazonaws.com:5439/dev", iam_role=role
        ): ("redshift://analytics.eu-west-1:5439", "dev.public.orders"),
        DuckDBWarehouse(tmp_path / "lake.duckdb"): (
            f"duckdb://{tmp_path / 'lake.duckdb'}",
            "lake.main.orders",
        ),
    }
    for warehouse, expected in cases.items():
        assert table_name(warehouse, feed) == expected
        assert "secret" not in "".join(table_name(warehouse, feed))
    assert dataset_of("s3://raw-bucket/orders/2024/a.csv") == ("s3://raw-bucket", "orders/2024/a.csv")
    assert dataset_of(f"file://{tmp_path}/a.csv") == ("file", str(tmp_path / "a.csv"))
