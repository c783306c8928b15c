"""Checking a clean Parquet file against its feed's contract before it is staged."""

from __future__ import annotations

from collections.abc import Callable
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
