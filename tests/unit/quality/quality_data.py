"""A small typed feed, clean Parquet batches of it, and ways to load them and read tables back exactly."""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Sequence
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from feedline.contract import Feed, parse_feed
from feedline.ledger import FileState, Ledger, utcnow
from feedline.storage.base import ObjectInfo
from feedline.warehouse.base import LoadOutcome, Warehouse

TYPES: dict[str, pa.DataType] = {
    "order_id": pa.int64(),
    "email": pa.string(),
    "country": pa.string(),
    "amount": pa.decimal128(12, 2),
    "quantity": pa.int32(),
    "ordered_at": pa.timestamp("us"),
}
_files = itertools.count(1)


def make_feed(*checks: dict[str, Any], mode: str = "append", name: str = "orders") -> Feed:
    return parse_feed(
        {
            "name": name,
            "source": {"uri": f"data/landing/{name}"},
            "columns": [
                {"name": "order_id", "type": "bigint", "nullable": False},
                {"name": "email", "type": "string"},
                {"name": "country", "type": "string"},
                {"name": "amount", "type": "decimal(12,2)"},
                {"name": "quantity", "type": "int"},
                {"name": "ordered_at", "type": "timestamp"},
            ],
            "primary_key": ["order_id"],
            "target": {"table": name, "mode": mode},
            "checks": list(checks),
        },
        "test",
    )


def order(order_id: int, **values: Any) -> dict[str, Any]:
    """One clean row, ordered an hour ago; keyword arguments override columns."""
    row: dict[str, Any] = {
        "order_id": order_id,
        "email": f"c{order_id}@example.com",
        "country": "DE",
        "amount": Decimal("10.50"),
        "quantity": 2,
        "ordered_at": utcnow().replace(microsecond=0) - timedelta(hours=1),
    }
    row.update(values)
    return row


def orders(ids: Sequence[int] | range, **values: Any) -> list[dict[str, Any]]:
    return [order(i, **values) for i in ids]


def write_batch(folder: Path, rows: Sequence[dict[str, Any]]) -> Path:
    path = folder / f"batch{next(_files)}.parquet"
    columns = {name: pa.array([r[name] for r in rows], typ) for name, typ in TYPES.items()}
    pq.write_table(pa.table(columns, pa.schema(list(TYPES.items()))), path)
    return path


def register(warehouse: Warehouse, feed: Feed) -> str:
    """A new file of `feed` in the ledger, moved to `loading` as the pipeline does; returns its id."""
    n = next(_files)
    ledger = Ledger(warehouse)
    entry = ledger.register(feed.name, [ObjectInfo(f"f{n}.csv", n, 0.0, f"sha256:{n:064x}")]).new[0]
    ledger.mark(entry.file_id, FileState.transforming)
    ledger.mark(entry.file_id, FileState.loading)
    return entry.file_id


def load_rows(
    warehouse: Warehouse, feed: Feed, folder: Path, rows: Sequence[dict[str, Any]]
) -> tuple[str, LoadOutcome]:
    """Register a file and load `rows` as its clean batch; returns (file id, outcome)."""
    file_id = register(warehouse, feed)
    parquet = write_batch(folder, rows)
    outcome = warehouse.load(
        feed, file_id, parquet, rows_in=len(rows), rows_rejected=0, duplicates=0,
        clean_uri=str(parquet), rejected_uri="",
    )  # fmt: skip
    return file_id, outcome


def select(warehouse: Warehouse, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
    with warehouse.transaction() as tx:
        tx.execute(sql, params)
        return tx.fetchall()


def dump(warehouse: Warehouse, feed: Feed) -> tuple[int, str]:
    """Every row of the feed's target, lineage columns included, in a total order: (rows, sha256)."""
    target = warehouse.target(feed)
    columns = [*TYPES, "_feedline_file_id", "_feedline_loaded_at"]
    names = ", ".join(f'"{c}"' for c in columns)
    rows = select(warehouse, f'SELECT {names} FROM "{target.schema}"."{target.name}" ORDER BY {names}')
    text = "\n".join(repr(tuple(_plain(v) for v in row)) for row in rows)
    return len(rows), hashlib.sha256(text.encode()).hexdigest()


def results(warehouse: Warehouse, file_id: str) -> dict[str, tuple[Any, ...]]:
    """{check: (severity, passed, observed, expected, message)} recorded for one file."""
    rows = select(
        warehouse,
        'SELECT "check", "severity", "passed", "observed", "expected", "message" '
        f'FROM "feedline_audit"."checks" WHERE "file_id" = {warehouse.dialect.param}',
        [file_id],
    )
    return {r[0]: tuple(r[1:]) for r in rows}


def _plain(value: Any) -> Any:
    """The same value whichever driver read it (DuckDB and psycopg agree on these types)."""
    return value.isoformat() if isinstance(value, datetime) else value
