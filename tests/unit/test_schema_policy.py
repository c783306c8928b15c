"""Schema policy per feed: discard drops and counts unknown columns, freeze quarantines the file naming
them, evolve carries them as text into new nullable table columns and widens types safely. Run through
the transform, the warehouses (DuckDB and PostgreSQL for real, Redshift's SQL with sqlglot and its load
on PostgreSQL) and `FeedPipeline.run_once()`."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import polars as pl
import pytest
import sqlglot

from feedline.contract import ColumnType, Feed, parse_feed
from feedline.errors import BadFileError, ContractError
from feedline.ledger import FileState
from feedline.pipeline import FeedPipeline
from feedline.settings import Settings
from feedline.transform import TransformResult, transform_file
from feedline.warehouse.base import Warehouse
from feedline.warehouse.dialect import ColumnDef, TableColumn, TableRef, widens
from feedline.warehouse.redshift import RedshiftDialect
from support import age
from warehouses import make_warehouse

COLUMNS = [
    {"name": "id", "type": "int", "nullable": False},
    {"name": "amount", "type": "decimal(10,2)"},
    {"name": "qty", "type": "int"},
]


def make_feed(policy: str, columns: list[dict[str, Any]] | None = None, **extra: Any) -> Feed:
    raw = {
        "name": "events",
        "source": {"uri": "data/landing/events"},
        "columns": COLUMNS if columns is None else columns,
        "primary_key": ["id"],
        "target": {"table": "events", "mode": "upsert"},
        "schema_policy": policy,
        **extra,
    }
    return parse_feed(raw, "test")


def transform(feed: Feed, text: str, tmp_path: Path) -> tuple[TransformResult, pl.DataFrame, pl.DataFrame]:
    source = tmp_path / "in.csv"
    source.write_text(text)
    clean, rejected = tmp_path / "clean.parquet", tmp_path / "rejected.parquet"
    result = transform_file(feed, source, clean, rejected)
    assert result.balanced
    return result, pl.read_parquet(clean), pl.read_parquet(rejected)


# --- the transform ---------------------------------------------------------------------------------


def test_discard_drops_and_counts_unknown_columns(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="feedline.transform.run")
    text = "id,Note,amount,qty,zip,\n1,hello,1.50,2,12345,\n2,,x,1,,\n"
    result, clean, rejected = transform(make_feed("discard"), text, tmp_path)
    assert clean.columns == ["id", "amount", "qty"]
    assert rejected.columns == ["_line", "_reason", "id", "amount", "qty"]
    assert result.columns_dropped == ("Note", "zip", "(unnamed field 6)")
    assert (result.rows_in, result.rows_out, result.rows_rejected) == (2, 1, 1)
    assert TransformResult.from_dict(json.loads(json.dumps(result.to_dict()))) == result
    assert (
        "dropped 3 column(s) feed events does not declare (schema_policy discard): Note, zip" in caplog.text
    )


def test_freeze_quarantines_a_file_naming_the_unexpected_columns(tmp_path: Path) -> None:
    feed = make_feed("freeze")
    with pytest.raises(BadFileError) as info:
        transform(feed, "id,amount,Note,qty,zip\n1,1.50,a,2,1\n", tmp_path)
    assert str(info.value) == (
        f"{tmp_path / 'in.csv'}: the header has column(s) Note, zip that feed events's contract does not "
        "declare, and its schema_policy is freeze; add them to the feed's columns, or set "
        "`schema_policy: discard` (drop them) or `schema_policy: evolve` (add them to the table)"
    )
    assert not list(tmp_path.glob("*.parquet*"))
    result, clean, _ = transform(feed, "QTY,id, Amount \n2,1,1.50\n", tmp_path)  # order and case are free
    assert (result.rows_out, result.columns_dropped) == (1, ())
    assert clean.row(0) == (1, pytest.approx(1.5), 2)


def test_evolve_carries_unknown_columns_as_cleaned_nullable_text(tmp_path: Path) -> None:
    columns = [*COLUMNS, {"name": "order_note", "type": "string", "source": "Note"}]
    text = (
        "id,amount,qty,Note,Order Note,customerEmail,,2nd line\n"
        "1,1.50,2,n,  first  ,A@X.COM,x,7\n"
        "2,,,,N/A,,,\n"
    )
    result, clean, rejected = transform(make_feed("evolve", columns), text, tmp_path)
    names = ["id", "amount", "qty", "order_note", "order_note_2", "customer_email", "col_2nd_line"]
    assert clean.columns == names
    assert clean.schema["order_note_2"] == pl.String
    assert clean.select(names[4:]).rows() == [("first", "A@X.COM", "7"), (None, None, None)]
    assert result.columns_dropped == ("(unnamed field 7)",)  # a field without a name cannot be a column
    assert rejected.columns == ["_line", "_reason", *names]


@pytest.mark.parametrize("policy", ["discard", "freeze", "evolve"])
def test_a_missing_contract_column_is_terminal_under_every_policy(policy: str, tmp_path: Path) -> None:
    with pytest.raises(
        BadFileError, match=r"header lacks required column\(s\) qty \(found: id, amount, extra\)"
    ):
        transform(make_feed(policy), "id,amount,extra\n1,2,3\n", tmp_path)


def test_without_a_header_extra_fields_stay_a_row_problem(tmp_path: Path) -> None:
    feed = make_feed("freeze", csv={"header": False})
    result, clean, rejected = transform(feed, "1,1.50,2\n2,1.50,2,surplus\n", tmp_path)
    assert clean["id"].to_list() == [1]
    assert rejected["_reason"].to_list() == ["row has more than 3 fields"]
    assert result.columns_dropped == ()


# --- widening rules and Redshift's SQL ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("old", "new", "safe"),
    [
        ("int", "bigint", True),
        ("int", "float", True),
        ("bigint", "float", False),  # a double holds integers exactly only up to 2**53
        ("decimal(10,2)", "decimal(12,2)", True),
        ("decimal(10,2)", "decimal(11,3)", True),
        ("decimal(10,2)", "decimal(10,3)", False),  # one integer digit fewer
        ("decimal(10,2)", "decimal(13,3)", True),
        ("decimal(10,2)", "decimal(12,1)", False),
        ("date", "string", True),
        ("bool", "string", True),
        ("bigint", "int", False),
        ("string", "int", False),
        ("date", "timestamp", False),
    ],
)
def test_safe_widening(old: str, new: str, safe: bool) -> None:
    assert widens(ColumnType.parse(old), ColumnType.parse(new)) is safe


def test_redshift_adds_columns_and_lengthens_varchars_only() -> None:
    dialect, ref = RedshiftDialect(), TableRef("public", "events")
    add = dialect.add_column(ref, ColumnDef("note", ColumnType("string"), nullable=False))
    assert (
        add == 'ALTER TABLE "public"."events" ADD COLUMN "note" VARCHAR(65535)'
    )  # nullable, no IF NOT EXISTS
    short = TableColumn("note", "character varying(256)", ColumnType("string"), 256)
    alter = dialect.alter_column_type(ref, short, ColumnType("string"))
    assert alter == 'ALTER TABLE "public"."events" ALTER COLUMN "note" TYPE VARCHAR(65535)'
    for sql in (add, alter):
        assert isinstance(sqlglot.parse_one(sql, read="redshift"), sqlglot.exp.Alter)
    with pytest.raises(ContractError) as info:
        dialect.alter_column_type(ref, TableColumn("qty", "integer", ColumnType("int")), ColumnType("bigint"))
    assert str(info.value) == (
        "column qty of public.events is integer and the contract now says bigint, but redshift changes a "
        "column's type in place only to lengthen a VARCHAR: add a column of the new type, copy the values "
        "into it, drop the old column and rename the new one (or recreate the table), then replay the file"
    )


# --- the warehouses ----------------------------------------------------------------------------------


@pytest.fixture(params=["duckdb", "postgres"])
def warehouse(request: pytest.FixtureRequest, tmp_path: Path) -> Warehouse:
    url = None if request.param == "duckdb" else request.getfixturevalue("postgres_url")
    return make_warehouse(str(request.param), tmp_path / "wh", url)


def query(warehouse: Warehouse, sql: str) -> list[tuple[Any, ...]]:
    with warehouse.transaction() as tx:
        tx.execute(sql)
        return tx.fetchall()


def execute(warehouse: Warehouse, sql: str) -> None:
    with warehouse.transaction() as tx:
        tx.execute(sql)


def table_types(warehouse: Warehouse, feed: Feed) -> dict[str, ColumnType | None]:
    ref = warehouse.target(feed)
    with warehouse.transaction() as tx:
        tx.execute(warehouse.dialect.list_column_types(), [ref.schema, ref.name])
        found = [warehouse.dialect.table_column(row) for row in tx.fetchall()]
    return {c.name: c.type for c in found if not c.name.startswith("_feedline")}


def test_evolve_widens_contract_types_keeping_the_values(warehouse: Warehouse) -> None:
    columns = [*COLUMNS, {"name": "code", "type": "int"}, {"name": "day", "type": "date"}]
    warehouse.ensure_table(make_feed("evolve", columns))
    table = warehouse.dialect.table(warehouse.target(make_feed("evolve")))
    execute(
        warehouse,
        f"INSERT INTO {table} (id, amount, qty, code, day) VALUES (1, 12345678.91, 7, 42, '2024-01-31')",
    )
    wider = [
        {"name": "id", "type": "int", "nullable": False},
        {"name": "amount", "type": "decimal(13,3)"},
        {"name": "qty", "type": "bigint"},
        {"name": "code", "type": "string"},
        {"name": "day", "type": "string"},
        {"name": "added", "type": "float", "nullable": False},
    ]
    warehouse.ensure_table(make_feed("evolve", wider))
    assert table_types(warehouse, make_feed("evolve")) == {
        "id": ColumnType("int"),
        "amount": ColumnType("decimal", 13, 3),
        "qty": ColumnType("bigint"),
        "code": ColumnType("string"),
        "day": ColumnType("string"),
        "added": ColumnType("float"),
    }
    rows = query(warehouse, f"SELECT id, amount, qty, code, day, added FROM {table}")
    assert [tuple(str(v) if v is not None else None for v in row) for row in rows] == [
        ("1", "12345678.910", "7", "42", "2024-01-31", None)
    ]


@pytest.mark.parametrize(
    ("column", "before", "after", "sql"),
    [
        ("qty", "bigint", "int", {"duckdb": "BIGINT", "postgres": "bigint"}),
        (
            "amount",
            "decimal(10,2)",
            "decimal(10,3)",
            {"duckdb": "DECIMAL(10,2)", "postgres": "numeric(10,2)"},
        ),
        ("amount", "string", "decimal(10,2)", {"duckdb": "VARCHAR", "postgres": "character varying"}),
    ],
)
def test_evolve_refuses_a_narrowing_naming_table_column_and_types(
    warehouse: Warehouse, column: str, before: str, after: str, sql: dict[str, str]
) -> None:
    def feed_with(ctype: str) -> Feed:
        return make_feed("evolve", [c if c["name"] != column else {**c, "type": ctype} for c in COLUMNS])

    warehouse.ensure_table(feed_with(before))
    kind = "duckdb" if warehouse.dialect.name == "duckdb" else "postgres"
    with pytest.raises(ContractError) as info:
        warehouse.ensure_table(feed_with(after))
    ref = warehouse.target(feed_with(after))
    assert str(info.value).startswith(
        f"events: column {column} of {ref} is {sql[kind]} and the contract now says {after}, which is not a "
        "safe widening"
    )
    assert table_types(warehouse, feed_with(after))[column] == ColumnType.parse(before)


def test_other_policies_never_alter_the_table(warehouse: Warehouse) -> None:
    warehouse.ensure_table(make_feed("discard"))
    wider = [c if c["name"] != "qty" else {**c, "type": "bigint"} for c in COLUMNS]
    for policy in ("discard", "freeze"):
        warehouse.ensure_table(make_feed(policy, wider))
    assert table_types(warehouse, make_feed("discard"))["qty"] == ColumnType("int")


def test_postgres_lengthens_a_short_varchar(postgres_url: str, tmp_path: Path) -> None:
    warehouse = make_warehouse("postgres", tmp_path, postgres_url)
    execute(warehouse, "CREATE TABLE events (id integer, amount numeric(10,2), qty integer, note varchar(5))")
    columns = [*COLUMNS, {"name": "note", "type": "string"}]
    warehouse.ensure_table(make_feed("evolve", columns))
    lengths = query(
        warehouse,
        "SELECT column_name, character_maximum_length FROM information_schema.columns "
        "WHERE table_name = 'events' AND column_name = 'note'",
    )
    assert lengths == [("note", None)]


def test_redshift_asks_for_the_varchar_statement_it_cannot_run_in_a_transaction(
    postgres_url: str, tmp_path: Path
) -> None:
    warehouse = make_warehouse("redshift", tmp_path, postgres_url)
    execute(warehouse, "CREATE TABLE events (id integer, amount numeric(10,2), qty integer, note varchar(5))")
    with pytest.raises(ContractError) as info:
        warehouse.ensure_table(make_feed("evolve", [*COLUMNS, {"name": "note", "type": "string"}]))
    assert str(info.value) == (
        "events: column note of public.events is character varying(5) and the contract now says string; "
        "redshift cannot change a column's type inside the load's transaction: run `ALTER TABLE "
        '"public"."events" ALTER COLUMN "note" TYPE VARCHAR(65535)` once, then replay the file'
    )


# --- FeedPipeline.run_once() per policy ----------------------------------------------------------------


def land(settings: Settings, name: str, text: str) -> None:
    landing = settings.home / "data" / "landing" / "events"
    landing.mkdir(parents=True, exist_ok=True)
    (landing / name).write_text(text)
    age(landing / name)


def pipeline_for(feed: Feed, warehouse: Warehouse, tmp_path: Path) -> tuple[FeedPipeline, Settings]:
    settings = Settings.from_env({"FEEDLINE_HOME": str(tmp_path)})
    return FeedPipeline(feed, settings, warehouse), settings


def test_run_once_discard_loads_the_contract_columns(
    warehouse: Warehouse, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="feedline.transform.run")
    pipeline, settings = pipeline_for(make_feed("discard"), warehouse, tmp_path)
    land(settings, "a.csv", "id,amount,qty,Note\n1,1.50,2,hi\n2,x,1,ho\n")
    summary = pipeline.run_once()
    assert summary.files == {"a.csv": "loaded"}
    table = warehouse.dialect.table(warehouse.target(pipeline.feed))
    assert [str(v) for v in query(warehouse, f"SELECT * FROM {table}")[0][:3]] == ["1", "1.50", "2"]
    assert set(table_types(warehouse, pipeline.feed)) == {"id", "amount", "qty"}
    entry = pipeline.ledger.entries("events")[0]
    assert (entry.state, entry.rows_in, entry.rows_loaded, entry.rows_rejected, entry.error) == (
        FileState.loaded, 2, 1, 1, None,
    )  # fmt: skip
    assert "(schema_policy discard): Note" in caplog.text


def test_run_once_freeze_quarantines_the_file(warehouse: Warehouse, tmp_path: Path) -> None:
    pipeline, settings = pipeline_for(make_feed("freeze"), warehouse, tmp_path)
    land(settings, "a.csv", "id,amount,qty,Note\n1,1.50,2,hi\n")
    land(settings, "b.csv", "id,amount,qty\n2,2.50,3\n")
    summary = pipeline.run_once()
    assert summary.files == {"a.csv": "quarantined", "b.csv": "loaded"}
    entry = next(e for e in pipeline.ledger.entries("events") if e.key == "a.csv")
    assert entry.state is FileState.quarantined
    assert "the header has column(s) Note that feed events's contract does not declare" in (entry.error or "")
    reason = settings.home / "data" / "quarantine" / "events" / "files" / "a.csv.reason.txt"
    assert "schema_policy: discard" in reason.read_text()
    table = warehouse.dialect.table(warehouse.target(pipeline.feed))
    assert query(warehouse, f"SELECT id FROM {table}") == [(2,)]


@pytest.mark.parametrize("kind", ["duckdb", "postgres", "redshift"])
def test_run_once_evolve_adds_new_columns_to_the_table(kind: str, tmp_path: Path, request: Any) -> None:
    url = None if kind == "duckdb" else request.getfixturevalue("postgres_url")
    warehouse = make_warehouse(kind, tmp_path / "wh", url)
    pipeline, settings = pipeline_for(make_feed("evolve"), warehouse, tmp_path)
    land(settings, "a.csv", "id,amount,qty\n1,1.50,2\n")
    assert pipeline.run_once().files == {"a.csv": "loaded"}
    land(settings, "b.csv", "id,amount,qty,Note,ZIP Code\n2,2.50,3,hello,12345\n3,x,1,bad,\n")
    assert pipeline.run_once().files == {"b.csv": "loaded"}
    land(settings, "c.csv", "id,zip code,amount,qty\n4,999,4.00,1\n")
    assert pipeline.run_once().files == {"c.csv": "loaded"}

    types = table_types(warehouse, pipeline.feed)
    assert (types["note"], types["zip_code"]) == (ColumnType("string"), ColumnType("string"))
    table = warehouse.dialect.table(warehouse.target(pipeline.feed))
    rows = query(warehouse, f"SELECT id, note, zip_code FROM {table} ORDER BY id")
    assert rows == [(1, None, None), (2, "hello", "12345"), (4, None, "999")]
    for entry in pipeline.ledger.entries("events"):
        assert entry.state is FileState.loaded
        assert entry.rows_in == (entry.rows_loaded or 0) + (entry.rows_rejected or 0) + (
            entry.duplicates or 0
        )


def test_run_once_evolve_widens_and_refuses_a_narrowing(warehouse: Warehouse, tmp_path: Path) -> None:
    pipeline, settings = pipeline_for(make_feed("evolve"), warehouse, tmp_path)
    land(settings, "a.csv", "id,amount,qty\n1,1.50,2\n")
    pipeline.run_once()
    wider = [c if c["name"] != "qty" else {**c, "type": "bigint"} for c in COLUMNS]
    pipeline, _ = pipeline_for(make_feed("evolve", wider), warehouse, tmp_path)
    land(settings, "b.csv", f"id,amount,qty\n2,2.50,{2**40}\n")
    assert pipeline.run_once().files == {"b.csv": "loaded"}
    table = warehouse.dialect.table(warehouse.target(pipeline.feed))
    assert query(warehouse, f"SELECT id, qty FROM {table} ORDER BY id") == [(1, 2), (2, 2**40)]

    pipeline, _ = pipeline_for(make_feed("evolve"), warehouse, tmp_path)  # qty back to int: a narrowing
    land(settings, "c.csv", "id,amount,qty\n3,1.00,1\n")
    with pytest.raises(
        ContractError, match=r"column qty of .* the contract now says int, which is not a safe"
    ):
        pipeline.run_once()
    assert query(warehouse, f"SELECT count(*) FROM {table}") == [(2,)]
