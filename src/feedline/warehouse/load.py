"""The exactly-once load every backend shares: check, lock the ledger row, publish the rows, run the batch
checks, mark `loaded`."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from feedline.contract import ColumnType, Feed, LoadMode
from feedline.errors import FeedlineError, QualityCheckError, TerminalError
from feedline.ledger import TERMINAL, FileState, Ledger, utcnow
from feedline.quality.checks import check_batch, record_results
from feedline.quality.spec import SchemaPolicy
from feedline.warehouse.dialect import ColumnDef, TableRef, check_file_id
from feedline.warehouse.parquet import check_parquet, has_duplicate_keys

if TYPE_CHECKING:
    from feedline.warehouse.base import LoadOutcome, Tx, Warehouse

log = logging.getLogger(__name__)


def load_file(
    warehouse: Warehouse, feed: Feed, file_id: str, parquet: Path, metrics: dict[str, Any]
) -> LoadOutcome:
    """`Warehouse.load`: the file's rows and its `loaded` mark (with `metrics`) commit together, after
    the transaction locked and re-read the ledger row; errors name the feed, file and table."""
    from feedline.warehouse.base import LoadOutcome

    ledger, target = Ledger(warehouse), warehouse.target(feed)
    try:
        check_file_id(file_id)
        known = ledger.get(file_id)  # a retry of a loaded file skips the checks of the file below
        if known is not None and known.state is FileState.loaded:
            log.info("File %s (%s) is already loaded; nothing to do", file_id, known.key)
            return LoadOutcome(known.rows_loaded or 0, already_loaded=True)
        check_parquet(feed, parquet)
        extra = evolved_columns(feed, parquet)
        dedupe = bool(feed.primary_key) and has_duplicate_keys(parquet, feed.primary_key)
        with warehouse.transaction() as tx:
            entry = ledger.get(file_id, tx=tx, lock=True)
            if entry is None:
                raise TerminalError(f"file {file_id} is not in the ledger; register it before loading")
            if entry.state is FileState.loaded:
                log.info("File %s (%s) is already loaded; nothing to do", file_id, entry.key)
                return LoadOutcome(entry.rows_loaded or 0, already_loaded=True)
            if entry.state in TERMINAL:
                raise TerminalError(
                    f"file {file_id} ({entry.key}) is {entry.state}; replay it before loading"
                )
            warehouse._ensure_table(tx, feed, extra)
            rows = _publish(
                warehouse, tx, feed, file_id, parquet, metrics["clean_uri"], dedupe=dedupe, extra=extra
            )
            check_batch(warehouse, tx, feed, file_id, rows)  # a failed `error` check rolls all back
            ledger.mark(file_id, FileState.loaded, tx=tx, rows_loaded=rows, **metrics)
    except FeedlineError as exc:
        if isinstance(exc, QualityCheckError):
            record_results(warehouse, feed.name, file_id, exc.results)
        raise type(exc)(f"{feed.name}: loading {parquet.name} (file {file_id}) into {target}: {exc}") from exc
    log.info("Loaded %d rows of %s into %s (%s mode)", rows, parquet.name, target, feed.target.mode)
    return LoadOutcome(rows, already_loaded=False)


def evolved_columns(feed: Feed, parquet: Path) -> list[ColumnDef]:
    """schema_policy evolve: the clean file's columns beyond the contract, which the transform wrote as
    nullable text, in file order; none under the other policies."""
    if feed.schema_policy is not SchemaPolicy.evolve:
        return []
    import pyarrow as pa
    import pyarrow.parquet as pq

    known = {c.name for c in feed.columns}
    extra = [f for f in pq.read_schema(parquet) if f.name not in known]
    odd = [
        f"{f.name} ({f.type})"
        for f in extra
        if not (pa.types.is_string(f.type) or pa.types.is_large_string(f.type))
    ]
    if odd:
        raise TerminalError(
            f"{parquet.name}: column(s) {', '.join(odd)} are not in the contract and not text, so not "
            "written by schema_policy evolve; transform the file again (feedline replay)"
        )
    return [ColumnDef(f.name, ColumnType("string")) for f in extra]


def _publish(
    warehouse: Warehouse,
    tx: Tx,
    feed: Feed,
    file_id: str,
    parquet: Path,
    clean_uri: str,
    *,
    dedupe: bool,
    extra: list[ColumnDef],
) -> int:
    """Put the file's rows into the target; returns how many.

    Where the backend has a bulk path into the target (`bulk_publish`) and no key repeats in the file,
    the rows go straight in; an upsert first deletes the target rows whose key is in the file, staging
    only the key. Otherwise (Redshift, or a key repeated in the file) the whole file is staged, the last
    row of each key kept, the rows it replaces deleted, and the rest inserted from staging. Either way
    nothing is visible before the ledger mark commits with it."""
    d, target, mode = warehouse.dialect, warehouse.target(feed), feed.target.mode
    columns = [*(ColumnDef(c.name, c.type, c.nullable) for c in feed.columns), *extra]
    lineage = [file_id, utcnow()]
    key = list(feed.primary_key)
    if warehouse.bulk_publish and not dedupe:
        if mode is LoadMode.upsert:
            key_columns = [c for c in columns if c.name in key]
            keys = _stage(warehouse, tx, feed, file_id, key_columns, parquet, clean_uri, row_order=False)
            _delete_replaced(tx, feed, target, keys, key_columns, _file_rows(parquet))
            tx.execute(d.drop_table(keys))
        elif mode is LoadMode.replace:
            tx.execute(d.delete_all(target))
        return warehouse._insert_direct(tx, columns, target, parquet, lineage)
    staging = _stage(warehouse, tx, feed, file_id, columns, parquet, clean_uri)
    names = [c.name for c in columns]
    if dedupe:
        for sql in d.dedupe(staging, key, names):
            tx.execute(sql)
    rows = int(tx.scalar(d.count(staging)))
    if mode is LoadMode.upsert:
        _delete_replaced(tx, feed, target, staging, [c for c in columns if c.name in key], rows)
    elif mode is LoadMode.replace:
        tx.execute(d.delete_all(target))
    tx.execute(d.insert_from_staging(target, staging, names), lineage)
    tx.execute(d.drop_table(staging))
    return rows


def _delete_replaced(
    tx: Tx, feed: Feed, target: TableRef, staging: TableRef, key: list[ColumnDef], rows: int
) -> None:
    """Delete the target rows whose key is among the `rows` staged, inside the dialect's join guard."""
    d = tx.dialect
    if feed.target.index_key and d.key_index:
        # The planner's guess for a table never analysed is thousands of rows: a scan of the target
        # would beat an index it would have to probe that often.
        tx.execute(d.analyze(staging))
    guard = d.delete_join_guard(key)
    if guard is not None:
        tx.execute(guard[0], [rows])
    tx.execute(d.delete_matching(target, staging, [c.name for c in key]))
    if guard is not None:
        tx.execute(guard[1])


def _file_rows(parquet: Path) -> int:
    import pyarrow.parquet as pq

    return int(pq.read_metadata(parquet).num_rows)


def _stage(
    warehouse: Warehouse,
    tx: Tx,
    feed: Feed,
    file_id: str,
    columns: list[ColumnDef],
    parquet: Path,
    clean_uri: str,
    *,
    row_order: bool = True,
) -> TableRef:
    """A fresh staging table of the file's `columns` (numbered in file order with `row_order`), filled;
    dropped by the caller, or by the rollback."""
    d = warehouse.dialect
    staging = d.staging_table(feed.name, file_id)
    if not d.temporary_staging:
        tx.execute(d.create_schema(d.staging_schema))
    tx.execute(d.drop_table(staging))
    tx.execute(d.create_staging(staging, columns, row_order=row_order))
    warehouse._fill_staging(tx, columns, staging, parquet, clean_uri, row_order=row_order)
    return staging
