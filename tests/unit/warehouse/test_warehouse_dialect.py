"""The dialect layer and target selection: identifiers validated and quoted, SQL generated without a DB."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from clean_files import make_feed, select

from feedline.contract import ColumnType, Target
from feedline.errors import TerminalError, TransientError
from feedline.warehouse import connect_warehouse
from feedline.warehouse.base import Warehouse
from feedline.warehouse.dialect import ColumnDef, Dialect, TableRef
from feedline.warehouse.duckdb import DuckDBDialect, DuckDBWarehouse
from feedline.warehouse.postgres import PostgresDialect, PostgresWarehouse
from feedline.warehouse.redshift import RedshiftWarehouse

BAD_NAMES = ["orders; DROP TABLE x", 'a"b', "1abc", "", "a b", "x" * 64, "ordérs", "t--"]


@pytest.mark.parametrize("name", BAD_NAMES)
def test_identifiers_are_validated_before_quoting(name: str) -> None:
    dialect = Dialect()
    with pytest.raises(TerminalError, match="not a valid"):
        dialect.quote(name)
    with pytest.raises(TerminalError):
        TableRef("main", name)
    with pytest.raises(TerminalError):
        dialect.create_table(TableRef("main", "t"), [ColumnDef(name, ColumnType("int"))])


def test_a_feed_whose_target_escaped_validation_never_reaches_sql(warehouse: Warehouse) -> None:
    feed = make_feed()
    evil = feed.model_copy(
        update={"target": Target.model_construct(table="orders; DROP TABLE x", mode="append")}
    )
    with pytest.raises(TerminalError, match="orders; DROP TABLE x"):
        warehouse.ensure_table(evil)
    schema = warehouse.dialect.default_schema
    sql = f"SELECT table_name FROM information_schema.tables WHERE table_schema = '{schema}'"
    assert select(warehouse, sql) == []


def test_staging_names_derive_from_feed_and_a_validated_file_id() -> None:
    file_id = "ab" * 16
    assert Dialect().staging_table("orders", file_id) == TableRef("feedline_staging", f"stg_orders_{file_id}")
    dialect = DuckDBDialect()
    assert dialect.staging_table("orders", file_id) == TableRef("temp", f"stg_orders_{file_id}")
    assert dialect.create_staging(TableRef("temp", "s"), [ColumnDef("id", ColumnType("bigint"), False)]) == (
        'CREATE TEMPORARY TABLE "temp"."s" ("id" BIGINT NOT NULL, "_feedline_row" BIGINT NOT NULL)'
    )
    long_a = dialect.staging_table("a" * 40 + "_one", "0" * 32)
    long_b = dialect.staging_table("a" * 40 + "_two", "0" * 32)
    assert long_a != long_b
    assert len(long_a.name) <= 63
    assert len(long_b.name) <= 63
    for bad in ("ABCDEF" * 6, "0" * 31, "0" * 31 + "'", "x'; DROP TABLE t; --"):
        with pytest.raises(TerminalError, match="not a ledger file id"):
            dialect.staging_table("orders", bad)


def test_generated_load_sql_quotes_every_identifier_and_binds_every_value() -> None:
    d = DuckDBDialect()
    target, staging = TableRef("main", "orders"), TableRef("feedline_staging", "stg_orders_" + "0" * 32)
    stg = '"feedline_staging"."stg_orders_' + "0" * 32 + '"'
    assert d.delete_matching(target, staging, ["id", "region"]) == (
        f'DELETE FROM "main"."orders" USING {stg} '
        f'WHERE "main"."orders"."id" = {stg}."id" AND "main"."orders"."region" = {stg}."region"'
    )
    insert = d.insert_from_staging(target, staging, ["id", "at"])
    assert insert.startswith(
        'INSERT INTO "main"."orders" ("id", "at", "_feedline_file_id", "_feedline_loaded_at")'
    )
    assert insert.count("?") == 2
    assert d.delete_all(target) == 'DELETE FROM "main"."orders"'
    assert d.column_type(ColumnType("decimal", 38, 10)) == "DECIMAL(38,10)"
    assert d.column_type(ColumnType("float")) == "DOUBLE"
    pg = PostgresDialect()
    assert pg.insert_from_staging(target, staging, ["id"]).endswith(f'SELECT "id", %s, %s FROM {stg}')
    assert pg.create_staging(staging, [ColumnDef("id", ColumnType("bigint"), False)]) == (
        f'CREATE UNLOGGED TABLE {stg} ("id" BIGINT NOT NULL, "_feedline_row" BIGINT NOT NULL)'
    )
    keys_only = pg.create_staging(staging, [ColumnDef("id", ColumnType("bigint"), False)], row_order=False)
    assert keys_only == f'CREATE UNLOGGED TABLE {stg} ("id" BIGINT NOT NULL)'
    assert pg.insert_rows(TableRef("a", "files"), ["file_id", "x"], 2, "file_id") == (
        'INSERT INTO "a"."files" ("file_id", "x") VALUES (%s, %s), (%s, %s) '
        'ON CONFLICT ("file_id") DO NOTHING RETURNING "file_id"'
    )
    dedupe = pg.dedupe(staging, ["id"], ["id", "name"])
    assert dedupe == [
        f'DELETE FROM {stg} USING (SELECT "id", max("_feedline_row") AS keep FROM {stg} GROUP BY "id" '
        f'HAVING count(*) > 1) AS dupes WHERE {stg}."id" = dupes."id" AND {stg}."_feedline_row" < dupes.keep'
    ]


def test_connect_warehouse_picks_the_backend(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    plain = connect_warehouse(str(tmp_path / "w.duckdb"))
    assert isinstance(plain, DuckDBWarehouse)
    assert plain.path == tmp_path / "w.duckdb"
    relative = connect_warehouse("duckdb:///data/w.duckdb", read_only=True, lock_timeout=3)
    assert isinstance(relative, DuckDBWarehouse)
    assert (relative.path, relative.read_only, relative.lock_timeout) == (Path("data/w.duckdb"), True, 3)
    absolute = connect_warehouse(f"duckdb:///{tmp_path}/w.duckdb")
    assert isinstance(absolute, DuckDBWarehouse)
    assert absolute.path == tmp_path / "w.duckdb"
    for url in ("postgresql://user:secret@host:5433/db", "postgres://user:secret@host:5433/db"):
        pg = connect_warehouse(url, read_only=True, lock_timeout=7)
        assert type(pg) is PostgresWarehouse
        assert (pg.dsn, pg.read_only, pg.lock_timeout) == (url, True, 7)
        assert pg.where == "host:5433/db"
        assert "secret" not in repr(pg)
    with pytest.raises(TerminalError, match="unknown scheme 'mysql'") as info:
        connect_warehouse("mysql://user:secret@host/db")
    assert "secret" not in str(info.value)
    with pytest.raises(TerminalError, match=":memory:"):
        connect_warehouse(":memory:")
    assert isinstance(connect_warehouse("redshift://u@h:5439/dev?iam_role=" + ROLE), RedshiftWarehouse)


ROLE = "arn:aws:iam::123456789012:role/feedline-copy"


def test_read_only_warehouse_refuses_writes_and_missing_files(
    duckdb_warehouse: DuckDBWarehouse, tmp_path: Path
) -> None:
    reader = DuckDBWarehouse(duckdb_warehouse.path, read_only=True)
    with pytest.raises(TerminalError, match="read-only"):
        reader.ensure_table(make_feed())
    with pytest.raises(TerminalError, match="no DuckDB warehouse there yet"):
        DuckDBWarehouse(tmp_path / "absent.duckdb", read_only=True).count_rows(make_feed())
    assert not (tmp_path / "absent.duckdb").exists()


def test_driver_errors_are_translated_into_the_two_families(duckdb_warehouse: DuckDBWarehouse) -> None:
    import duckdb

    warehouse = duckdb_warehouse
    assert isinstance(warehouse.translate_error(duckdb.ConversionException("bad")), TerminalError)
    assert isinstance(warehouse.translate_error(duckdb.CatalogException("no table")), TerminalError)
    assert isinstance(warehouse.translate_error(duckdb.TransactionException("conflict")), TransientError)
    lock = duckdb.IOException('IO Error: Could not set lock on file "x": Conflicting lock is held')
    assert isinstance(warehouse.translate_error(lock), TransientError)
    other = ValueError("not a driver error")
    assert warehouse.translate_error(other) is other


def test_importing_the_package_does_not_import_a_driver_or_pyarrow() -> None:
    code = (
        "import sys, feedline.warehouse, feedline.ledger, feedline.warehouse.postgres, "
        "feedline.warehouse.redshift, feedline.warehouse.pgcopy; "
        "print(*(m in sys.modules for m in ('duckdb', 'pyarrow', 'psycopg', 'numpy', 'adbc_driver_manager')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False"] * 5
