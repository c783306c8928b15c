"""The checks' SQL as Redshift receives it: every statement of a checked load (and of the status reads),
captured from a real run of Redshift's dialect on PostgreSQL, parses with sqlglot's redshift dialect."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
import sqlglot
from quality_data import load_rows, make_feed, orders
from sqlglot import exp

from feedline.errors import ContractError, QualityCheckError
from feedline.ledger import Ledger
from feedline.quality.checks import CheckSQL, failed_results, latest_results
from feedline.warehouse.base import Tx
from feedline.warehouse.dialect import TableRef
from feedline.warehouse.redshift import RedshiftDialect
from warehouses import RedshiftOnPostgres

EVERY_KIND = (
    {"check": "unique", "columns": ["order_id", "country"]},
    {"check": "row_count", "min": 1},
    {"check": "row_count_change", "max_change": 10},
    {"check": "null_rate", "column": "email", "max": 0.5},
    {"check": "sum", "column": "amount", "min": 0},
    {"check": "avg", "column": "quantity", "max": 10},
    {"check": "freshness", "column": "ordered_at", "max_age_hours": 24},
    {"check": "references", "column": "country", "table": "countries", "key": "code", "schema": "ref"},
)
FILE_ID = "ab" * 16


def parse(sql: str) -> exp.Expression:
    parsed = sqlglot.parse_one(sql, read="redshift")
    assert parsed is not None
    return parsed


@pytest.fixture
def redshift(postgres_url: str) -> RedshiftOnPostgres:
    warehouse = RedshiftOnPostgres(postgres_url, iam_role="arn:aws:iam::123456789012:role/feedline-test")
    Ledger(warehouse).ensure()
    with warehouse.transaction() as tx:
        tx.execute('CREATE SCHEMA "ref"')
        tx.execute('CREATE TABLE "ref"."countries" ("code" VARCHAR(2))')
        tx.execute("""INSERT INTO "ref"."countries" VALUES ('DE')""")
    return warehouse


def capture(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    statements: list[str] = []
    execute = Tx.execute

    def spy(self: Tx, sql: str, params: Sequence[Any] = ()) -> None:
        statements.append(sql)
        execute(self, sql, params)

    monkeypatch.setattr(Tx, "execute", spy)
    return statements


def test_a_checked_load_on_redshift_runs_only_redshift_sql(
    redshift: RedshiftOnPostgres, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    feed = make_feed(*EVERY_KIND)
    load_rows(redshift, feed, tmp_path, orders([1, 2]))
    statements = capture(monkeypatch)
    Ledger(redshift).ensure()
    with pytest.raises(QualityCheckError, match="references_country"):  # FR is not in ref.countries
        load_rows(redshift, feed, tmp_path, orders([3, 4], country="FR"))
    latest_results(redshift)
    failed_results(redshift, "orders")

    for sql in statements:
        parse(sql)
    text = "\n".join(statements)
    assert 'CREATE TABLE IF NOT EXISTS "feedline_audit"."checks" ("file_id" VARCHAR(65535) NOT NULL' in text
    assert '"passed" BOOLEAN NOT NULL, "observed" DOUBLE PRECISION' in text
    checks = [s for s in statements if "_feedline_file_id" in s and not s.startswith(("INSERT", "DROP"))]
    checks += [s for s in statements if '"feedline_audit"' in s and ("checks" in s or "rows_loaded" in s)]
    kinds = {
        "aggregates": 'SELECT count(*), SUM(CASE WHEN "email" IS NULL THEN 1 ELSE 0 END), SUM("amount"), '
        'AVG(CAST("quantity" AS DOUBLE PRECISION)), MAX("ordered_at") FROM "public"."orders" WHERE '
        '"_feedline_file_id" = %s',
        "unique": 'HAVING count(*) > 1) AS d ORDER BY d."order_id", d."country" LIMIT 5',
        "references": 'NOT EXISTS (SELECT 1 FROM "ref"."countries" AS r WHERE r."code" = b."country")',
        "history": 'ORDER BY "loaded_at" DESC LIMIT 5',
        "record": 'INSERT INTO "feedline_audit"."checks" ("file_id", "feed", "run_id", "check", "severity"',
        "latest": "ROW_NUMBER() OVER (PARTITION BY",
        "failed": 'LEFT JOIN "feedline_audit"."files" AS f ON f."file_id" = c."file_id"',
    }
    for kind, fragment in kinds.items():
        assert any(fragment in s for s in checks), kind
    for forbidden in ("AT TIME ZONE", "NOW()", "FILTER (", "::"):
        assert forbidden not in text


def test_check_sql_is_built_from_quoted_identifiers_and_parameters() -> None:
    sql = CheckSQL(RedshiftDialect(), TableRef("public", "orders"), FILE_ID)
    query = sql.missing_references("country", TableRef("ref", "countries"), "code")
    assert query.params == (FILE_ID,)
    assert FILE_ID not in query.sql
    select = parse(query.sql)
    assert {t.name for t in select.find_all(exp.Table)} == {"orders", "countries"}
    history = sql.history("orders", 7)
    assert history.params == ("orders", "loaded", FILE_ID)
    assert history.sql.endswith("LIMIT 7")
    with pytest.raises(Exception, match="not a ledger file id"):
        CheckSQL(RedshiftDialect(), TableRef("public", "orders"), "1; DROP TABLE x")


def test_a_check_on_a_column_of_the_wrong_type_is_refused_when_the_feed_loads() -> None:
    message = "checks.sum_email: column 'email' is string, and check sum needs a number column; point"
    with pytest.raises(ContractError, match=message):
        make_feed({"check": "sum", "column": "email", "min": 0})
    with pytest.raises(ContractError, match="check freshness needs a date or timestamp column"):
        make_feed({"check": "freshness", "column": "quantity", "max_age_hours": 1})
