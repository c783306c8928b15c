"""Checking a clean Parquet file against its feed's contract before it is staged."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from feedline.contract import ColumnType, Feed
from feedline.errors import TerminalError


def check_parquet(feed: Feed, parquet: Path) -> None:
    """Fail fast, naming the column, when a clean file does not carry the contract's columns and types."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        schema = pq.read_schema(parquet)
    except FileNotFoundError:
        raise TerminalError(f"{parquet} does not exist; transform the file again") from None
    except (OSError, pa.ArrowException) as exc:
        raise TerminalError(f"{parquet} is not a readable Parquet file ({exc})") from None
    problems = []
    for column in feed.columns:
        index = schema.get_field_index(column.name)
        if index < 0:
            problems.append(f"column {column.name!r} is missing")
        elif not _arrow_fits(column.type, schema.field(index).type):
            problems.append(
                f"column {column.name!r} is {schema.field(index).type}, the contract says {column.type}"
            )
    if problems:
        raise TerminalError(f"{parquet.name}: {'; '.join(problems)}")


def _arrow_fits(expected: ColumnType, actual: Any) -> bool:
    """Whether an Arrow type stores the logical type losslessly (the transform writes exactly these)."""
    import pyarrow as pa

    t = pa.types
    if t.is_null(actual):
        return True
    checks: dict[str, Callable[[Any], bool]] = {
        "string": lambda a: t.is_string(a) or t.is_large_string(a),
        "int": lambda a: (
            t.is_integer(a) and (a.bit_width <= 16 or (t.is_signed_integer(a) and a.bit_width <= 32))
        ),
        "bigint": lambda a: t.is_integer(a) and (a.bit_width <= 32 or t.is_signed_integer(a)),
        "float": t.is_floating,
        "bool": t.is_boolean,
        "date": t.is_date,
        "timestamp": lambda a: t.is_timestamp(a) and a.tz is None and a.unit != "ns",
        "decimal": lambda a: (
            t.is_decimal(a)
            and a.scale == expected.scale
            and a.precision - a.scale <= (expected.precision or 0) - (expected.scale or 0)
        ),
    }
    return bool(checks[expected.name](actual))


def has_duplicate_keys(parquet: Path, key: Sequence[str]) -> bool:
    """Whether two rows of the file share a key: only then does a load need the in-batch dedupe.

    Reads the key columns alone, with DuckDB (all cores, spilling past `memory_limit`: the set of keys
    grows with the file, ~60 B a key). The transform already keeps one row per key, so this is usually
    false, and the load then publishes the file without a staging round trip where the backend can."""
    import tempfile

    import duckdb
    import pyarrow.parquet as pq

    from feedline.warehouse.dialect import identifier

    if len(key) == 1 and _strictly_increasing(parquet, key[0]):
        return False  # the common export, sorted by its id: one pass over one column proves it
    columns = ", ".join(f'"{identifier(k, "column name")}"' for k in key)
    conn = duckdb.connect(config={"memory_limit": "1GB", "temp_directory": tempfile.gettempdir()})
    try:
        conn.execute("SET enable_progress_bar = false")
        row = conn.execute(
            f"SELECT count(*) FROM (SELECT DISTINCT {columns} FROM read_parquet(?))", [str(parquet)]
        ).fetchone()
    finally:
        conn.close()
    return row is None or int(row[0]) != pq.ParquetFile(parquet).metadata.num_rows


def _strictly_increasing(parquet: Path, column: str) -> bool:
    """Whether the column never repeats because each value is greater than the one before (no nulls)."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    last = None
    try:
        for batch in pq.ParquetFile(parquet).iter_batches(batch_size=1 << 20, columns=[column]):
            values = batch.column(0)
            if values.null_count:
                return False
            if not len(values):
                continue
            if last is not None and not pc.greater(values[0], last).as_py():
                return False
            if len(values) > 1 and not pc.all(pc.greater(values[1:], values[:-1])).as_py():
                return False
            last = values[-1]
    except pa.ArrowNotImplementedError:  # a type without an order
        return False
    return True
