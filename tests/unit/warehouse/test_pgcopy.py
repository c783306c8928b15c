"""The Arrow → PostgreSQL binary COPY encoder, checked value by value against a real server."""

from __future__ import annotations

import math
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from feedline.contract import ColumnType
from feedline.warehouse.pgcopy import HEADER, TRAILER, copy_data, encode_batch

COLUMNS: list[tuple[str, str, pa.DataType, list[Any]]] = [
    ("i", "int", pa.int32(), [-(2**31), 2**31 - 1, 0, None, 7]),
    ("i16", "int", pa.int16(), [-(2**15), 2**15 - 1, 0, None, -1]),
    ("b", "bigint", pa.int64(), [-(2**63), 2**63 - 1, 0, None, -42]),
    ("u32", "bigint", pa.uint32(), [0, 2**32 - 1, 1, None, 3]),
    ("f", "float", pa.float64(), [0.1, -0.0, math.inf, None, 5e-324]),
    ("f32", "float", pa.float32(), [0.5, -math.inf, math.nan, None, 1.0]),
    ("ok", "bool", pa.bool_(), [True, False, None, True, False]),
    ("d", "date", pa.date32(), [date(1, 1, 1), date(9999, 12, 31), date(1969, 12, 31), None,
                                date(2000, 1, 1)]),
    ("d64", "date", pa.date64(), [date(1999, 12, 31), date(2000, 1, 2), None, date(1970, 1, 1),
                                  date(2024, 2, 29)]),
    ("t", "timestamp", pa.timestamp("us"), [datetime(1, 1, 1), datetime(9999, 12, 31, 23, 59, 59, 999999),
                                            datetime(1969, 12, 31, 23, 59, 59, 999999), None,
                                            datetime(2000, 1, 1)]),
    ("tms", "timestamp", pa.timestamp("ms"), [datetime(2024, 1, 2, 3, 4, 5, 678000), None,
                                              datetime(1900, 1, 1), datetime(2000, 1, 1),
                                              datetime(1970, 1, 1)]),
    ("s", "string", pa.large_string(), ["", "naïve ✓ 'q' \"dq\" \\ \t\n", "x" * 100_000, None, "ES"]),
    ("s32", "string", pa.string(), ["a", None, "", "b" * 3, "€"]),
    ("m", "decimal(12,2)", pa.decimal128(12, 2), ["9999999999.99", "-9999999999.99", "0", None, "-0.01"]),
    ("m5", "decimal(12,2)", pa.decimal128(5, 2), ["999.99", "-1.5", "0.01", None, "0"]),
    ("m18", "decimal(18,4)", pa.decimal128(18, 4), ["99999999999999.9999", "-0.0001", "1", None, "-12.5"]),
    ("mss", "decimal(5,5)", pa.decimal128(5, 5), ["0.12345", "-0.99999", "0", None, "0.00001"]),
    ("m38", "decimal(38,10)", pa.decimal128(38, 10), ["9999999999999999999999999999.9999999999",
                                                      "-9999999999999999999999999999.9999999999",
                                                      "-0.0000000001", None, "1234567890123456789.5"]),
    ("m380", "decimal(38,0)", pa.decimal128(38, 0), ["99999999999999999999999999999999999999",
                                                     "-170141183460469231731687303715884105", "0", None,
                                                     "-1"]),
    ("m203", "decimal(20,3)", pa.decimal128(20, 3), ["99999999999999999.999", "-12345678901234567.891",
                                                     "0.001", None, "-0.5"]),
    ("nothing", "string", pa.null(), [None] * 5),  # columns the transform found empty: Arrow's null type
    ("no_flag", "bool", pa.null(), [None] * 5),
    ("no_amount", "decimal(12,2)", pa.null(), [None] * 5),
    ("no_time", "timestamp", pa.null(), [None] * 5),
    ("no_count", "int", pa.null(), [None] * 5),
]  # fmt: skip
SQL_TYPES = {"int": "integer", "bigint": "bigint", "float": "double precision", "bool": "boolean",
             "date": "date", "timestamp": "timestamp", "string": "text"}  # fmt: skip


def arrow_value(value: Any, typ: pa.DataType) -> Any:
    return Decimal(value) if pa.types.is_decimal(typ) and value is not None else value


def same(got: Any, want: Any) -> bool:
    if isinstance(want, float) and math.isnan(want):
        return isinstance(got, float) and math.isnan(got)
    if isinstance(want, float) and want == 0.0:
        return got == 0.0 and math.copysign(1, got) == math.copysign(1, want)
    return bool(got == want and type(got) is type(want))


@pytest.fixture
def table(tmp_path: Path) -> pa.Table:
    return pa.table({name: pa.array([arrow_value(v, typ) for v in values], typ)
                     for name, _, typ, values in COLUMNS})  # fmt: skip


def contract() -> list[tuple[str, ColumnType]]:
    return [(name, ColumnType.parse(kind)) for name, kind, _, _ in COLUMNS]


def copy_into(url: str, chunks: Any, row_order: bool = False) -> list[tuple[Any, ...]]:
    defs = [f'"{n}" {SQL_TYPES.get(t.name) or f"numeric({t.precision},{t.scale})"}' for n, t in contract()]
    if row_order:
        defs.append('"_row" bigint')
    with psycopg.connect(url) as conn:
        conn.execute(f"CREATE TABLE t ({', '.join(defs)})")
        with conn.cursor().copy("COPY t FROM STDIN (FORMAT binary)") as copy:
            for chunk in chunks:
                copy.write(chunk)
        return conn.execute("SELECT * FROM t").fetchall()


def expected_rows(table: pa.Table, types: list[tuple[str, ColumnType]]) -> list[tuple[Any, ...]]:
    rows = table.to_pylist()
    casts = {"float": float}
    return [
        tuple(None if r[n] is None else casts.get(t.name, lambda v: v)(r[n]) for n, t in types) for r in rows
    ]


def test_every_type_and_edge_value_round_trips_exactly(
    table: pa.Table, postgres_url: str, tmp_path: Path
) -> None:
    path = tmp_path / "edge.parquet"
    pq.write_table(table, path)
    got = copy_into(postgres_url, copy_data(path, contract(), row_order=True, batch_rows=2), row_order=True)
    want = expected_rows(pq.read_table(path), contract())
    assert [r[-1] for r in got] == [0, 1, 2, 3, 4]  # rows numbered across batches, in file order
    for got_row, want_row in zip(got, want, strict=True):
        for (name, _), g, w in zip(contract(), got_row, want_row, strict=False):
            assert same(g, w), f"column {name}: got {g!r}, want {w!r}"


def test_a_sliced_batch_encodes_only_its_rows(table: pa.Table, postgres_url: str) -> None:
    batch = table.combine_chunks().to_batches()[0].slice(1, 3)
    got = copy_into(postgres_url, [HEADER, encode_batch(batch, [t for _, t in contract()]), TRAILER])
    want = expected_rows(pa.Table.from_batches([batch]), contract())
    assert len(got) == 3
    for got_row, want_row in zip(got, want, strict=True):
        assert all(same(g, w) for g, w in zip(got_row, want_row, strict=True))
