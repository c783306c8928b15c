"""Redshift: every statement of a load generated without a cluster and parsed with sqlglot's redshift
dialect; literals validated; the URL and IAM role; the COPY checks, run on PostgreSQL."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
import sqlglot
from clean_files import ARROW_TYPES, load, make_feed, row, select, staging_tables, target, write_parquet
from sqlglot import exp

from feedline.contract import Feed
from feedline.errors import TerminalError
from feedline.ledger import COLUMNS, FileState, Ledger, LedgerEntry, utcnow
from feedline.storage.base import ObjectInfo
from feedline.warehouse import connect_warehouse
from feedline.warehouse.base import Tx
from feedline.warehouse.dialect import TableRef
from feedline.warehouse.redshift import RedshiftDialect, RedshiftWarehouse, check_s3_uri, literal
from warehouses import RedshiftOnPostgres

ROLE = "arn:aws:iam::123456789012:role/feedline-copy"
FILE_ID = "ab" * 16
URI = f"s3://lake-bucket/processed/orders/{FILE_ID}.parquet"


class FakeCursor:
    """Records statements and answers the few queries a load reads: the ledger row, columns, counts."""

    def __init__(self, log: list[str], table_exists: bool) -> None:
        self.log, self.table_exists = log, table_exists
        self.result: list[Any] = []
        now = utcnow()
        entry = LedgerEntry(FILE_ID, "orders", "a.csv", "sha256:x", 1, 1, FileState.loading, now, now)
        self.ledger_row = tuple(
            str(v) if isinstance(v, FileState) else v for v in (getattr(entry, c) for c in COLUMNS)
        )

    def execute(self, sql: str, params: Any = None) -> None:
        self.log.append(sql)
        if sql.startswith('SELECT "file_id"'):
            self.result = [self.ledger_row]
        elif "information_schema.columns" in sql:
            self.result = [(name,) for name in ARROW_TYPES] if self.table_exists else []
        elif sql.startswith("SELECT count(*)"):
            self.result = [(3,)]
        else:
            self.result = []

    def fetchone(self) -> Any:
        return self.result[0] if self.result else None

    def fetchall(self) -> list[Any]:
        return list(self.result)


class RecordingRedshift(RedshiftWarehouse):
    """A RedshiftWarehouse whose connection only records what it is asked to run."""

    def __init__(self, table_exists: bool = True) -> None:
        super().__init__("redshift://feedline@cluster.example:5439/dev", iam_role=ROLE, region="eu-west-1")
        self.statements: list[str] = []
        self.table_exists = table_exists

    def _open(self) -> Any:
        return FakeConnection(FakeCursor(self.statements, self.table_exists))


class FakeConnection:
    def __init__(self, cursor: FakeCursor) -> None:
        self._cursor = cursor

    def cursor(self) -> FakeCursor:
        return self._cursor

    def commit(self) -> None:
        self._cursor.log.append("COMMIT")

    def rollback(self) -> None: ...

    def close(self) -> None: ...


def load_sql(mode: str, tmp_path: Path, *, table_exists: bool = True, key: bool = True) -> list[str]:
    warehouse = RecordingRedshift(table_exists)
    parquet = write_parquet(tmp_path / "clean.parquet", [row(1), row(2), row(2)])  # a key twice: dedupe
    warehouse.load(make_feed(mode, key=key), FILE_ID, parquet, rows_in=3, rows_rejected=0, duplicates=0,
                   clean_uri=URI, rejected_uri="")  # fmt: skip
    return warehouse.statements


def parse(sql: str) -> exp.Expression:
    parsed = sqlglot.parse_one(sql, read="redshift")
    assert parsed is not None
    return parsed


@pytest.mark.parametrize("mode", ["append", "upsert", "replace"])
def test_every_statement_of_a_load_is_redshift_sql(mode: str, tmp_path: Path) -> None:
    *_, check, statements, _ = "\n".join(load_sql(mode, tmp_path, table_exists=False)).split("COMMIT")
    assert check.strip().startswith('SELECT "file_id"')  # is it loaded already? (no lock)
    statements = statements.strip().splitlines()
    for sql in statements:
        parse(sql)
    text = "\n".join(statements)
    stg = f'"feedline_staging"."stg_orders_{FILE_ID}"'
    assert statements[0] == 'LOCK "feedline_audit"."files"'  # the load's transaction locks the ledger first
    assert f"COPY {stg} FROM '{URI}' IAM_ROLE '{ROLE}' FORMAT AS PARQUET REGION 'eu-west-1'" in statements
    copy = parse(next(s for s in statements if s.startswith("COPY")))
    assert isinstance(copy, exp.Copy)
    assert f'CREATE TABLE {stg} ("id" BIGINT NOT NULL, "name" VARCHAR(65535),' in text
    assert '"amount" DECIMAL(12,2), "big" DECIMAL(38,10))' in text
    assert '"_feedline_row"' not in text  # COPY from Parquet keeps no row order
    assert 'CREATE TEMP TABLE "dup_orders_' in text  # the dedupe's safety net
    for forbidden in ("TRUNCATE", "FOR UPDATE", "ON CONFLICT", "UNLOGGED", "CREATE INDEX", "RETURNING"):
        assert forbidden not in text.upper()
    deletes = [parse(s) for s in statements if s.startswith('DELETE FROM "public"."orders"')]
    if mode == "upsert":
        assert [d.sql("redshift") for d in deletes] == [
            f'DELETE FROM "public"."orders" USING {stg} WHERE "public"."orders"."id" = {stg}."id"'
        ]
    elif mode == "replace":
        assert [d.sql("redshift") for d in deletes] == ['DELETE FROM "public"."orders"']
    else:
        assert deletes == []
    inserts = [s for s in statements if s.startswith('INSERT INTO "public"."orders"')]
    assert len(inserts) == 1
    assert isinstance(parse(inserts[0]), exp.Insert)
    assert statements[-2].startswith('UPDATE "feedline_audit"."files" SET "state" = %s')
    assert f"DROP TABLE IF EXISTS {stg}" in statements


def test_a_load_without_a_key_skips_the_dedupe_and_ledger_sql_parses(tmp_path: Path) -> None:
    assert not any("dup_" in s for s in load_sql("append", tmp_path, key=False))
    warehouse = RecordingRedshift()
    ledger = Ledger(warehouse)
    ledger.ensure()
    ledger.register("orders", [ObjectInfo("a.csv", 1, 0.0, "sha256:x")])
    ledger.pending("orders")
    ledger.summary()
    for sql in warehouse.statements:
        parse(sql)
    text = "\n".join(warehouse.statements)
    assert '"error" VARCHAR(65535)' in text
    assert "CREATE INDEX" not in text
    assert "ON CONFLICT" not in text
    assert warehouse.statements.count('LOCK "feedline_audit"."files"') == 1  # register locks the table


@pytest.mark.parametrize(
    ("uri", "role", "region", "message"),
    [
        ("s3://b/x.parquet' IAM_ROLE 'arn:aws:iam::1:role/evil", ROLE, None, "not an s3://bucket/key URI"),
        ("/lake/processed/x.parquet", ROLE, None, "Redshift loads from S3 only"),
        ("s3://Bad_Bucket/x.parquet", ROLE, None, "not an s3://bucket/key URI"),
        ("s3://bucket/x\\'.parquet", ROLE, None, "not an s3://bucket/key URI"),
        (URI, "arn:aws:iam::123:role/short-account", None, "not an IAM role ARN"),
        (URI, ROLE + "'; DROP TABLE x; --", None, "not an IAM role ARN"),
        (URI, "arn:aws:s3:::bucket", None, "not an IAM role ARN"),
        (URI, ROLE + "\n", None, "not an IAM role ARN"),
        (URI + "\n", ROLE, None, "not an s3://bucket/key URI"),
        (URI, ROLE, "eu-west-1'", "not an AWS region"),
    ],
)
def test_copy_literals_are_validated(uri: str, role: str, region: str | None, message: str) -> None:
    with pytest.raises(TerminalError, match=message):
        RedshiftDialect().copy_from_s3(TableRef("s", "t"), uri, role, region)


def test_literals_double_quotes_and_refuse_backslashes() -> None:
    assert literal("it's") == "'it''s'"
    with pytest.raises(TerminalError, match="backslash"):
        literal("a\\b")
    assert check_s3_uri("s3://lake.bucket-1/a/b%2Fc d.parquet") == "s3://lake.bucket-1/a/b%2Fc d.parquet"
    gov = "arn:aws-us-gov:iam::123456789012:role/path/to/Role+=,.@-_"
    assert RedshiftWarehouse("redshift://h/db", iam_role=gov).iam_role == gov
    default = RedshiftDialect().copy_from_s3(TableRef("s", "t"), URI, "default")
    assert default == f"""COPY "s"."t" FROM '{URI}' IAM_ROLE default FORMAT AS PARQUET"""
    parse(default)


def test_connect_warehouse_reads_the_role_from_the_url_or_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    url = "redshift://loader:s3cret@wg.123456789012.eu-west-1.redshift-serverless.amazonaws.com:5439/dev"
    with_role = connect_warehouse(f"{url}?iam_role={ROLE}&region=eu-west-1&sslmode=require")
    assert isinstance(with_role, RedshiftWarehouse)
    assert (with_role.iam_role, with_role.region) == (ROLE, "eu-west-1")
    assert with_role._conninfo() == (
        "postgresql://loader:s3cret@wg.123456789012.eu-west-1.redshift-serverless.amazonaws.com:5439/dev"
        "?sslmode=require"
    )
    with pytest.raises(TerminalError, match="FEEDLINE_REDSHIFT_IAM_ROLE") as info:
        connect_warehouse(url)
    assert "s3cret" not in str(info.value)
    monkeypatch.setenv("FEEDLINE_REDSHIFT_IAM_ROLE", ROLE)
    from_env = connect_warehouse(url.replace("redshift://", "redshift+postgresql://"))
    assert isinstance(from_env, RedshiftWarehouse)
    assert (from_env.iam_role, from_env.region) == (ROLE, None)
    assert "s3cret" not in repr(from_env)
    monkeypatch.setenv("FEEDLINE_REDSHIFT_IAM_ROLE", "not-an-arn")
    with pytest.raises(TerminalError, match="not an IAM role ARN"):
        connect_warehouse(url)


def test_a_load_from_a_local_lake_is_terminal(tmp_path: Path) -> None:
    warehouse = RecordingRedshift()
    parquet = write_parquet(tmp_path / "clean.parquet", [row(1)])
    with pytest.raises(TerminalError, match="Redshift loads from S3 only"):
        warehouse.load(make_feed(), FILE_ID, parquet, rows_in=1, rows_rejected=0, duplicates=0,
                       clean_uri=str(parquet), rejected_uri="")  # fmt: skip
    assert not any(s.startswith(("COPY", "INSERT", "DELETE")) for s in warehouse.statements)


# --- Redshift's load semantics on PostgreSQL ----------------------------------------------------------


@pytest.fixture
def redshift(postgres_url: str) -> RedshiftOnPostgres:
    wh = RedshiftOnPostgres(postgres_url, iam_role=ROLE)
    Ledger(wh).ensure()
    return wh


def registered(warehouse: RedshiftOnPostgres, feed: Feed, n: int = 1) -> str:
    ledger = Ledger(warehouse)
    entry = ledger.register(feed.name, [ObjectInfo(f"f{n}.csv", n, 0.0, f"sha256:{n}")]).new[0]
    return entry.file_id


def test_columns_out_of_contract_order_are_refused(redshift: RedshiftOnPostgres, tmp_path: Path) -> None:
    feed = make_feed()
    swapped = {"name": ARROW_TYPES["name"], "id": ARROW_TYPES["id"]} | ARROW_TYPES
    with pytest.raises(TerminalError, match="maps Parquet columns by position"):
        load(
            redshift,
            feed,
            registered(redshift, feed),
            write_parquet(tmp_path / "a.parquet", [row(1)], swapped),
        )
    extra = ARROW_TYPES | {"note": pa.string()}
    with pytest.raises(TerminalError, match="maps Parquet columns by position"):
        load(
            redshift,
            feed,
            registered(redshift, feed, 2),
            write_parquet(tmp_path / "b.parquet", [row(1)], extra),
        )
    assert staging_tables(redshift) == []


def test_a_copy_that_picks_up_another_object_is_refused(
    redshift: RedshiftOnPostgres, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """COPY FROM 's3://…/<id>.parquet' also loads '<id>.parquet.bak': the row count gives it away."""
    feed = make_feed("upsert")
    file_id = registered(redshift, feed)
    parquet = write_parquet(tmp_path / "a.parquet", [row(1), row(2)])
    copy_once = RedshiftOnPostgres._copy_into_staging

    def copy_twice(self: RedshiftOnPostgres, tx: Tx, *args: Any) -> None:
        copy_once(self, tx, *args)
        copy_once(self, tx, *args)

    monkeypatch.setattr(RedshiftOnPostgres, "_copy_into_staging", copy_twice)
    with pytest.raises(TerminalError, match="staged 4 rows, the file has 2: another object shares its key"):
        load(redshift, feed, file_id, parquet)
    monkeypatch.undo()
    assert staging_tables(redshift) == []
    assert load(redshift, feed, file_id, parquet).rows_loaded == 2
    assert select(redshift, f"SELECT count(*) FROM {target(redshift)}") == [(2,)]


def test_the_dedupe_keeps_one_row_per_key_and_exact_duplicates_once(
    redshift: RedshiftOnPostgres, tmp_path: Path
) -> None:
    feed = make_feed("append")
    rows = [row(1, "b"), row(1, "b"), row(2, "x"), row(1, "a"), row(3, "only"), row(2, "x")]
    out = load(redshift, feed, registered(redshift, feed), write_parquet(tmp_path / "a.parquet", rows))
    assert out.rows_loaded == 3
    got = select(redshift, f"SELECT id, name FROM {target(redshift)} ORDER BY id")
    assert got == [(1, "b"), (2, "x"), (3, "only")]
    with redshift.transaction() as tx:  # the dedupe's temporary table went with its transaction
        tx.execute("SELECT count(*) FROM pg_tables WHERE tablename LIKE 'dup_%%'")
        assert tx.fetchone() == (0,)
