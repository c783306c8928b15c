"""Clean Parquet inputs typed like the transform's output, a typed test feed, and small query helpers."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from feedline.contract import Feed, parse_feed
from feedline.warehouse.base import Warehouse

# The transform's clean output types, one per logical type.
ARROW_TYPES: dict[str, pa.DataType] = {
    "id": pa.int64(),
    "name": pa.string(),
    "qty": pa.int32(),
    "price": pa.float64(),
    "gift": pa.bool_(),
    "day": pa.date32(),
    "at": pa.timestamp("us"),
    "amount": pa.decimal128(12, 2),
    "big": pa.decimal128(38, 10),
}


def make_feed(
    mode: str = "append",
    *,
    name: str = "orders",
    table: str = "orders",
    key: bool = True,
    index_key: bool = False,
) -> Feed:
    return parse_feed(
        {
            "name": name,
            "source": {"uri": f"data/landing/{name}"},
            "columns": [
                {"name": "id", "type": "bigint", "nullable": False},
                {"name": "name", "type": "string"},
                {"name": "qty", "type": "int"},
                {"name": "price", "type": "float"},
                {"name": "gift", "type": "bool"},
                {"name": "day", "type": "date"},
                {"name": "at", "type": "timestamp"},
                {"name": "amount", "type": "decimal(12,2)"},
                {"name": "big", "type": "decimal(38,10)"},
            ],
            "primary_key": ["id"] if key else [],
            "target": {"table": table, "mode": mode, **({"index_key": True} if index_key else {})},
        },
        "test",
    )


def row(id_: int | None, name: str = "x", **extra: Any) -> dict[str, Any]:
    """One clean row; only id and name vary in most tests."""
    values: dict[str, Any] = {
        "id": id_,
        "name": name,
        "qty": 1,
        "price": 1.5,
        "gift": False,
        "day": date(2024, 1, 2),
        "at": datetime(2024, 1, 2, 3, 4, 5, 678901),
        "amount": Decimal("10.25"),
        "big": Decimal("1.0000000001"),
    }
    values.update(extra)
    return values


def write_parquet(
    path: Path, rows: Sequence[dict[str, Any]], types: dict[str, pa.DataType] | None = None
) -> Path:
    """Write rows with explicit Arrow types (default: the transform's clean types)."""
    types = types or ARROW_TYPES
    columns = {name: pa.array([r.get(name) for r in rows], typ) for name, typ in types.items()}
    table = pa.table(columns, pa.schema(list(types.items())))
    pq.write_table(table, path)
    return path


def load(warehouse: Warehouse, feed: Feed, file_id: str, parquet: Path, rows_in: int = 0) -> Any:
    return warehouse.load(
        feed,
        file_id,
        parquet,
        rows_in=rows_in,
        rows_rejected=1,
        duplicates=2,
        clean_uri=str(parquet),
        rejected_uri="file:///rejected.parquet",
    )


def select(warehouse: Warehouse, sql: str) -> list[tuple[Any, ...]]:
    with warehouse.transaction() as tx:
        tx.execute(sql)
        return tx.fetchall()


def staging_tables(warehouse: Warehouse) -> list[str]:
    sql = "SELECT table_name FROM information_schema.tables WHERE table_schema = 'feedline_staging'"
    return [r[0] for r in select(warehouse, sql)]


def target(warehouse: Warehouse, feed: Feed | None = None) -> str:
    """The feed's target table as schema.table (main.orders on DuckDB, public.orders on PostgreSQL)."""
    return str(warehouse.target(feed or make_feed()))
