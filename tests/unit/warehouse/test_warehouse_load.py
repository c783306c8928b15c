"""The exactly-once load on every backend: modes, in-batch dedupe, retries, rollback and exact round trips."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pytest
from clean_files import ARROW_TYPES, load, make_feed, row, select, staging_tables, target, write_parquet

from feedline.contract import Feed
from feedline.errors import TerminalError
from feedline.ledger import FileState, Ledger
from feedline.warehouse.base import Warehouse
from feedline.warehouse.dialect import ROW_ORDER, ColumnDef

Register = Callable[[Feed], str]

# information_schema.columns.data_type of the contract's types, per dialect.
COLUMN_TYPES = {
    "duckdb": ["BIGINT", "VARCHAR", "INTEGER", "DOUBLE", "BOOLEAN", "DATE", "TIMESTAMP", "DECIMAL(12,2)",
               "DECIMAL(38,10)", "VARCHAR", "TIMESTAMP"],
    "postgresql": ["bigint", "character varying", "integer", "double precision", "boolean", "date",
                   "timestamp without time zone", "numeric", "numeric", "character varying",
                   "timestamp without time zone"],
}  # fmt: skip
COLUMN_TYPES["redshift"] = COLUMN_TYPES["postgresql"]


def ids_and_names(warehouse: Warehouse) -> list[tuple[int, str]]:
    return [
        (r[0], r[1]) for r in select(warehouse, f"SELECT id, name FROM {target(warehouse)} ORDER BY id, name")
    ]


def test_ensure_table_creates_contract_columns_and_lineage(warehouse: Warehouse) -> None:
    warehouse.ensure_table(make_feed())
    warehouse.ensure_table(make_feed())  # idempotent
    schema = warehouse.target(make_feed()).schema
    columns = select(
        warehouse,
        "SELECT column_name, data_type, is_nullable FROM information_schema.columns "
        f"WHERE table_schema = '{schema}' AND table_name = 'orders' ORDER BY ordinal_position",
    )
    assert [c[0] for c in columns] == [*ARROW_TYPES, "_feedline_file_id", "_feedline_loaded_at"]
    assert [c[1] for c in columns] == COLUMN_TYPES[warehouse.dialect.name]
    assert [c[2] for c in columns] == ["NO", *["YES"] * 10]
    assert warehouse.count_rows(make_feed()) == 0


def test_ensure_table_refuses_a_table_missing_contract_columns(warehouse: Warehouse) -> None:
    with warehouse.transaction() as tx:
        tx.execute(f"CREATE TABLE {target(warehouse)} (id BIGINT)")
    with pytest.raises(TerminalError, match=r"without column\(s\) name, qty"):
        warehouse.ensure_table(make_feed())


def test_append_loads_every_row_and_marks_the_ledger_in_the_same_transaction(
    warehouse: Warehouse, register: Register, tmp_path: Path
) -> None:
    feed = make_feed("append")
    first, second = register(feed), register(feed)
    out = load(warehouse, feed, first, write_parquet(tmp_path / "a.parquet", [row(1, "a"), row(2, "b")]), 3)
    assert (out.rows_loaded, out.already_loaded) == (2, False)
    load(warehouse, feed, second, write_parquet(tmp_path / "b.parquet", [row(2, "b2"), row(3, "c")]))
    assert ids_and_names(warehouse) == [(1, "a"), (2, "b"), (2, "b2"), (3, "c")]
    entry = Ledger(warehouse).get(first)
    assert entry is not None
    assert entry.state is FileState.loaded
    assert (entry.rows_in, entry.rows_loaded, entry.rows_rejected, entry.duplicates) == (3, 2, 1, 2)
    assert entry.clean_uri == str(tmp_path / "a.parquet")
    assert entry.rejected_uri == "file:///rejected.parquet"
    assert entry.loaded_at is not None
    assert entry.error is None
    lineage = select(warehouse, f"SELECT DISTINCT _feedline_file_id FROM {target(warehouse)} WHERE id = 1")
    assert lineage == [(first,)]
    assert staging_tables(warehouse) == []


def test_upsert_replaces_existing_keys_and_keeps_the_last_duplicate_of_a_batch(
    warehouse: Warehouse, register: Register, tmp_path: Path
) -> None:
    feed = make_feed("upsert")
    load(warehouse, feed, register(feed), write_parquet(tmp_path / "a.parquet", [row(1, "a"), row(2, "b")]))
    batch = [row(2, "third"), row(3, "c"), row(2, "second"), row(3, "c-last"), row(2, "first")]
    out = load(warehouse, feed, register(feed), write_parquet(tmp_path / "b.parquet", batch))
    assert out.rows_loaded == 2
    if warehouse.dialect.staging_row_order:  # the last row of a key in the file wins
        assert ids_and_names(warehouse) == [(1, "a"), (2, "first"), (3, "c-last")]
    else:  # Redshift: no row order after COPY; the greatest row of a key wins, the same on every retry
        assert ids_and_names(warehouse) == [(1, "a"), (2, "third"), (3, "c-last")]


def test_append_with_a_key_dedupes_within_the_batch_only(
    warehouse: Warehouse, register: Register, tmp_path: Path
) -> None:
    feed = make_feed("append")
    load(warehouse, feed, register(feed), write_parquet(tmp_path / "a.parquet", [row(1, "a")]))
    out = load(
        warehouse, feed, register(feed), write_parquet(tmp_path / "b.parquet", [row(1, "b"), row(1, "c")])
    )
    assert out.rows_loaded == 1
    assert ids_and_names(warehouse) == [(1, "a"), (1, "c")]


def test_append_without_a_key_keeps_every_row(
    warehouse: Warehouse, register: Register, tmp_path: Path
) -> None:
    feed = make_feed("append", key=False)
    out = load(
        warehouse, feed, register(feed), write_parquet(tmp_path / "a.parquet", [row(1, "a"), row(1, "a")])
    )
    assert out.rows_loaded == 2
    assert warehouse.count_rows(feed) == 2


def test_replace_swaps_the_whole_table(warehouse: Warehouse, register: Register, tmp_path: Path) -> None:
    feed = make_feed("replace")
    load(warehouse, feed, register(feed), write_parquet(tmp_path / "a.parquet", [row(1, "a"), row(2, "b")]))
    out = load(warehouse, feed, register(feed), write_parquet(tmp_path / "b.parquet", [row(7, "z")]))
    assert out.rows_loaded == 1
    assert ids_and_names(warehouse) == [(7, "z")]


def test_a_retried_load_after_commit_changes_nothing(
    warehouse: Warehouse, register: Register, tmp_path: Path
) -> None:
    feed = make_feed("append")
    file_id = register(feed)
    parquet = write_parquet(tmp_path / "a.parquet", [row(1, "a"), row(2, "b")])
    assert load(warehouse, feed, file_id, parquet).already_loaded is False
    before = Ledger(warehouse).get(file_id)
    again = load(warehouse, feed, file_id, parquet)
    assert (again.rows_loaded, again.already_loaded) == (2, True)
    assert ids_and_names(warehouse) == [(1, "a"), (2, "b")]
    assert Ledger(warehouse).get(file_id) == before


@pytest.mark.parametrize(
    ("types", "message"),
    [
        ({**ARROW_TYPES, "qty": pa.string()}, "column 'qty' is string, the contract says int"),
        ({k: v for k, v in ARROW_TYPES.items() if k != "amount"}, "column 'amount' is missing"),
        ({**ARROW_TYPES, "amount": pa.decimal128(12, 4)}, r"column 'amount' is decimal128\(12, 4\)"),
        ({**ARROW_TYPES, "at": pa.timestamp("ns")}, r"column 'at' is timestamp\[ns\]"),
    ],
    ids=["wrong-type", "missing-column", "wrong-scale", "nanoseconds"],
)
def test_a_file_that_breaks_the_contract_is_terminal_and_changes_nothing(
    warehouse: Warehouse,
    register: Register,
    tmp_path: Path,
    types: dict[str, pa.DataType],
    message: str,
) -> None:
    feed = make_feed("upsert")
    load(warehouse, feed, register(feed), write_parquet(tmp_path / "ok.parquet", [row(1, "a")]))
    bad_id = register(feed)
    rows = [{**row(1, "b"), "qty": "7"}] if types["qty"] == pa.string() else [row(1, "b")]
    with pytest.raises(TerminalError, match=message):
        load(warehouse, feed, bad_id, write_parquet(tmp_path / "bad.parquet", rows, types))
    assert ids_and_names(warehouse) == [(1, "a")]
    entry = Ledger(warehouse).get(bad_id)
    assert entry is not None
    assert entry.state is FileState.loading
    assert entry.rows_loaded is None
    assert staging_tables(warehouse) == []


@pytest.mark.parametrize("mode", ["append", "upsert"])
def test_a_load_failing_midway_rolls_back_target_ledger_and_staging(
    warehouse: Warehouse, register: Register, tmp_path: Path, mode: str
) -> None:
    feed = make_feed(mode)
    load(warehouse, feed, register(feed), write_parquet(tmp_path / "ok.parquet", [row(1, "a")]))
    bad_id = register(feed)
    # A null key passes the schema check but violates NOT NULL while the rows are being staged.
    with pytest.raises(TerminalError, match=r"(?i)not[ -]null") as info:
        load(warehouse, feed, bad_id, write_parquet(tmp_path / "null.parquet", [row(1, "b"), row(None, "c")]))
    assert f"orders: loading null.parquet (file {bad_id}) into {target(warehouse)}" in str(info.value)
    assert ids_and_names(warehouse) == [(1, "a")]
    entry = Ledger(warehouse).get(bad_id)
    assert entry is not None
    assert entry.state is FileState.loading
    assert staging_tables(warehouse) == []


def test_a_failure_after_the_target_was_changed_rolls_everything_back(
    warehouse: Warehouse, register: Register, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    feed = make_feed("replace")
    load(warehouse, feed, register(feed), write_parquet(tmp_path / "a.parquet", [row(1, "a"), row(2, "b")]))
    file_id = register(feed)

    def crash(*args: object, **kwargs: object) -> None:
        raise RuntimeError("worker killed between publish and mark")

    monkeypatch.setattr(Ledger, "mark", crash)
    with pytest.raises(RuntimeError, match="worker killed"):
        load(warehouse, feed, file_id, write_parquet(tmp_path / "b.parquet", [row(9, "z")]))
    monkeypatch.undo()
    assert ids_and_names(warehouse) == [(1, "a"), (2, "b")]
    entry = Ledger(warehouse).get(file_id)
    assert entry is not None
    assert entry.state is FileState.loading
    assert staging_tables(warehouse) == []
    assert load(warehouse, feed, file_id, tmp_path / "b.parquet").rows_loaded == 1  # the retry succeeds
    assert ids_and_names(warehouse) == [(9, "z")]


def test_decimal_timestamp_and_friends_round_trip_exactly(
    warehouse: Warehouse, register: Register, tmp_path: Path
) -> None:
    feed = make_feed("append")
    values = row(
        1,
        "naïve ✓ 'quoted' \"double\"",
        qty=-2147483648,
        price=0.1,
        gift=True,
        day=date(1970, 1, 1),
        at=datetime(1999, 12, 31, 23, 59, 59, 999999),
        amount=Decimal("-9999999999.99"),
        big=Decimal("1234567890123456789012345678.0123456789"),
    )
    nulls = {name: None for name in ARROW_TYPES} | {"id": 2}
    load(warehouse, feed, register(feed), write_parquet(tmp_path / "a.parquet", [values, nulls]))
    got = select(
        warehouse,
        f'SELECT id, name, qty, price, gift, day, "at", amount, big FROM {target(warehouse)} ORDER BY id',
    )
    assert got[0] == tuple(values[name] for name in ARROW_TYPES)
    assert got[1] == (2, *[None] * 8)


def test_loading_a_file_the_ledger_does_not_allow(
    warehouse: Warehouse, register: Register, tmp_path: Path
) -> None:
    feed = make_feed()
    parquet = write_parquet(tmp_path / "a.parquet", [row(1)])
    with pytest.raises(TerminalError, match="not in the ledger"):
        load(warehouse, feed, "0" * 32, parquet)
    file_id = register(feed)
    Ledger(warehouse).mark(file_id, FileState.quarantined, error="bad header")
    with pytest.raises(TerminalError, match="is quarantined; replay it"):
        load(warehouse, feed, file_id, parquet)
    with pytest.raises(TerminalError, match="not a ledger file id"):
        load(warehouse, feed, "x'; DROP TABLE orders; --", parquet)
    assert staging_tables(warehouse) == []


def test_drop_staging_removes_only_the_feeds_leftovers(warehouse: Warehouse) -> None:
    feed, other = make_feed(), make_feed(name="orders_eu", table="orders_eu")
    if warehouse.dialect.temporary_staging:
        assert warehouse.drop_staging(feed) == 0  # temporary staging dies with its connection
        return
    mine, theirs = "a" * 32, "b" * 32
    leftovers = [f"stg_orders_{mine}", f"stg_orders_{theirs}", f"stg_orders_eu_{mine}", "stg_orders_notes"]
    with warehouse.transaction() as tx:
        tx.execute("CREATE SCHEMA feedline_staging")
        for name in leftovers:
            tx.execute(f"CREATE TABLE feedline_staging.{name} (x INTEGER)")
    assert warehouse.drop_staging(feed, mine) == 1
    assert sorted(staging_tables(warehouse)) == sorted(leftovers[1:])
    assert warehouse.drop_staging(feed) == 1
    assert warehouse.drop_staging(other) == 1
    assert staging_tables(warehouse) == ["stg_orders_notes"]


@pytest.mark.parametrize("mode", ["append", "replace", "upsert"])
def test_a_file_with_unique_keys_skips_staging_where_the_backend_can(
    warehouse: Warehouse, register: Register, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mode: str
) -> None:
    feed = make_feed(mode)
    load(warehouse, feed, register(feed), write_parquet(tmp_path / "a.parquet", [row(1, "a"), row(2, "b")]))
    staged: list[list[str]] = []
    fill = type(warehouse)._fill_staging

    def spy(
        self: Warehouse, tx: object, columns: list[ColumnDef], *args: object, row_order: bool = True
    ) -> None:
        staged.append([c.name for c in columns] + ([ROW_ORDER] if row_order else []))
        fill(self, tx, columns, *args, row_order=row_order)  # type: ignore[arg-type]

    monkeypatch.setattr(type(warehouse), "_fill_staging", spy)
    out = load(
        warehouse, feed, register(feed), write_parquet(tmp_path / "b.parquet", [row(3, "c"), row(2, "b2")])
    )
    assert out.rows_loaded == 2
    if not warehouse.bulk_publish:  # Redshift stages every file whole
        assert staged == [[*ARROW_TYPES, ROW_ORDER]]
    else:  # straight into the target; an upsert stages only the key (unnumbered), to delete what it replaces
        assert staged == ([["id"]] if mode == "upsert" else [])
    expected = {
        "append": [(1, "a"), (2, "b"), (2, "b2"), (3, "c")],
        "replace": [(2, "b2"), (3, "c")],
        "upsert": [(1, "a"), (2, "b2"), (3, "c")],
    }[mode]
    assert ids_and_names(warehouse) == expected
    lineage = select(
        warehouse, f"SELECT count(_feedline_file_id), count(_feedline_loaded_at) FROM {target(warehouse)}"
    )
    assert lineage == [(len(expected), len(expected))]
    assert staging_tables(warehouse) == []
