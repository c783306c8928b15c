"""A feed's checks as Airflow's common-sql check operators: what they are built with, and a real run of
the operators' SQL on PostgreSQL (the postgres provider is not installed: the hook is a small psycopg
DbApiHook; everything else is the operators' own code)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from airflow.exceptions import AirflowException
from airflow.providers.common.sql.hooks.sql import DbApiHook
from airflow.providers.common.sql.operators.sql import SQLColumnCheckOperator, SQLTableCheckOperator
from airflow.sdk import DAG

from feedline.airflow.checks import check_operators, file_partition, sql_checks
from feedline.contract import Feed, parse_feed
from feedline.ledger import utcnow
from feedline.warehouse.postgres import PostgresWarehouse
from feedline.warehouse.redshift import RedshiftDialect
from warehouses import fresh_database, postgres_unreachable

pytestmark = pytest.mark.airflow

CHECKS = (
    {"check": "unique", "columns": ["order_id"]},
    {"check": "unique", "columns": ["country", "email"]},
    {"check": "row_count", "min": 1, "max": 1000},
    {"check": "row_count_change", "max_change": 0.5},
    {"check": "null_rate", "column": "email", "max": 0},
    {"check": "null_rate", "column": "country", "max": 0.25, "name": "few_missing_countries"},
    {"check": "sum", "column": "amount", "min": 0},
    {"check": "avg", "column": "quantity", "min": 1, "max": 20},
    {"check": "freshness", "column": "ordered_at", "max_age_hours": 24},
    {"check": "references", "column": "country", "table": "countries", "key": "code"},
    {"check": "row_count", "max": 5, "severity": "warn", "name": "small_batches"},
)
TABLE = '"public"."orders"'
FIRST, OTHER = "1" * 32, "2" * 32  # lineage ids of two loaded files


def make_feed(*checks: dict[str, Any]) -> Feed:
    return parse_feed(
        {
            "name": "orders",
            "source": {"uri": "data/landing/orders"},
            "columns": [
                {"name": "order_id", "type": "bigint", "nullable": False},
                {"name": "email", "type": "string"},
                {"name": "country", "type": "string"},
                {"name": "amount", "type": "decimal(12,2)"},
                {"name": "quantity", "type": "int"},
                {"name": "ordered_at", "type": "timestamp"},
            ],
            "primary_key": ["order_id"],
            "target": {"table": "orders"},
            "checks": list(checks),
        },
        "test",
    )


AVG = 'AVG(CAST("quantity" AS DOUBLE PRECISION))'


def test_checks_map_to_column_mapping_and_table_checks() -> None:
    checks = sql_checks(make_feed(*CHECKS))
    assert checks.table == TABLE
    assert checks.column_mapping == {
        "order_id": {"unique_check": {"equal_to": 0}},
        "email": {"null_check": {"equal_to": 0}},
    }
    assert checks.table_checks == {
        "unique_country_email": {
            "check_statement": 'COUNT(*) >= 0 AND (SELECT COUNT(*) FROM (SELECT "country", "email" FROM '
            f'{TABLE} WHERE "country" IS NOT NULL AND "email" IS NOT NULL GROUP BY "country", "email" '
            "HAVING COUNT(*) > 1) AS repeated) = 0"
        },
        "row_count": {"check_statement": "COUNT(*) >= 1 AND COUNT(*) <= 1000"},
        "few_missing_countries": {
            "check_statement": 'SUM(CASE WHEN "country" IS NULL THEN 1 ELSE 0 END) <= 0.25 * COUNT(*)'
        },
        "sum_amount": {"check_statement": 'COALESCE(SUM("amount"), 0) >= 0'},
        "avg_quantity": {"check_statement": f"{AVG} IS NULL OR ({AVG} >= 1 AND {AVG} <= 20)"},
        "freshness_ordered_at": {
            "check_statement": """MAX("ordered_at") >= (CURRENT_TIMESTAMP AT TIME ZONE 'UTC') - """
            "INTERVAL '86400 seconds'"
        },
        "references_country": {
            "check_statement": 'COUNT(*) >= 0 AND NOT EXISTS (SELECT 1 FROM "public"."orders" AS b WHERE '
            'b."country" IS NOT NULL AND NOT EXISTS (SELECT 1 FROM "public"."countries" AS r WHERE '
            'r."code" = b."country"))'
        },
    }
    assert checks.skipped == {
        "row_count_change": "compares a batch with earlier loads; feedline runs it in the load",
        "small_batches": "severity warn not requested",
    }
    warn_only = sql_checks(make_feed(*CHECKS), severities=("warn",))
    assert list(warn_only.table_checks) == ["small_batches"]


def test_names_the_column_operator_cannot_quote_become_table_checks() -> None:
    feed = parse_feed(
        {
            "name": "odd",
            "source": {"uri": "data/landing/odd"},
            "columns": [{"name": "order", "type": "timestamp"}, {"name": "Email", "type": "string"}],
            "target": {"table": "odd", "schema": "sales"},
            "checks": [
                {"check": "unique", "columns": ["order"]},
                {"check": "null_rate", "column": "Email", "max": 0},
                {"check": "freshness", "column": "order", "max_age_hours": 1.5},
            ],
        },
        "test",
    )
    checks = sql_checks(feed, RedshiftDialect())
    assert checks.table == '"sales"."odd"'
    assert checks.column_mapping == {}
    assert checks.table_checks["null_rate_Email"] == {
        "check_statement": 'SUM(CASE WHEN "Email" IS NULL THEN 1 ELSE 0 END) <= 0 * COUNT(*)'
    }
    assert 'GROUP BY "order"' in checks.table_checks["unique_order"]["check_statement"]
    fresh = checks.table_checks["freshness_order"]["check_statement"]
    assert fresh == """MAX("order") >= GETDATE() - INTERVAL '5400 seconds'"""  # Redshift's "now" is UTC


def test_operators_are_built_for_a_dag() -> None:
    with DAG("team_dag", schedule=None) as dag:
        built = check_operators(
            make_feed(*CHECKS), conn_id="warehouse", partition_clause=file_partition("ab" * 16), retries=0
        )
    columns, table = built
    assert isinstance(columns, SQLColumnCheckOperator)
    assert isinstance(table, SQLTableCheckOperator)
    assert [op.task_id for op in built] == ["orders_checks_columns", "orders_checks_table"]
    assert set(dag.task_dict) == {"orders_checks_columns", "orders_checks_table"}
    assert columns.column_mapping == sql_checks(make_feed(*CHECKS)).column_mapping
    assert table.checks == sql_checks(make_feed(*CHECKS)).table_checks
    for op in built:
        assert (op.conn_id, op.table, op.retries) == ("warehouse", TABLE, 0)
        assert op.partition_clause == f"\"_feedline_file_id\" = '{'ab' * 16}'"
    with pytest.raises(Exception, match="not a ledger file id"):
        file_partition("x' OR '1' = '1")
    assert check_operators(make_feed(), conn_id="warehouse") == []


class PsycopgHook(DbApiHook):
    """The smallest common-sql hook over psycopg, standing in for the postgres provider's."""

    conn_name_attr = "psycopg_conn_id"
    default_conn_name = "psycopg_default"

    def __init__(self, url: str) -> None:
        super().__init__()
        self.url = url

    def get_conn(self) -> Any:
        import psycopg

        return psycopg.connect(self.url)


@pytest.fixture
def postgres_url() -> Iterator[str]:
    reason = postgres_unreachable()
    if reason is not None:
        pytest.skip(reason)
    with fresh_database() as url:
        yield url


def insert(warehouse: PostgresWarehouse, *rows: tuple[Any, ...]) -> None:
    """Rows of the published table: (order_id, email, country, amount, quantity, hours old, file id)."""
    now = utcnow()
    with warehouse.transaction() as tx:
        for *values, hours, file_id in rows:
            tx.execute(
                'INSERT INTO "public"."orders" ("order_id", "email", "country", "amount", "quantity", '
                '"ordered_at", "_feedline_file_id") VALUES (%s, %s, %s, %s, %s, %s, %s)',
                [*values, now - timedelta(hours=hours), file_id],
            )


def run(operator: Any, url: str) -> None:
    operator.get_db_hook = lambda: PsycopgHook(url)
    operator.execute(context={})


def test_the_operators_run_on_postgresql(postgres_url: str) -> None:
    warehouse = PostgresWarehouse(postgres_url)
    feed = make_feed(*CHECKS[:-1])
    warehouse.ensure_table(feed)
    with warehouse.transaction() as tx:
        tx.execute('CREATE TABLE "public"."countries" ("code" VARCHAR(2))')
        tx.execute("""INSERT INTO "public"."countries" VALUES ('DE'), ('FR')""")
    insert(warehouse, (1, "a@x", "DE", 10, 2, 1, FIRST), (2, "b@x", "FR", 5, 3, 2, FIRST))
    with DAG("team_dag", schedule=None):
        columns, table = check_operators(feed, conn_id="warehouse")
        one_file = check_operators(feed, conn_id="warehouse", partition_clause=file_partition(FIRST),
                                   task_id_prefix="first_file")  # fmt: skip
    for op in (columns, table, *one_file):
        run(op, postgres_url)

    # another file breaks four checks: a repeated key, a null email, a negative sum, an unknown country
    insert(warehouse, (2, None, "XX", -100, 1, 1, OTHER))
    with pytest.raises(AirflowException) as column_failure:
        run(columns, postgres_url)
    assert "Column: order_id\n\tCheck: unique_check" in str(column_failure.value)
    assert "Column: email\n\tCheck: null_check" in str(column_failure.value)
    with pytest.raises(AirflowException) as table_failure:
        run(table, postgres_url)
    assert {r.name for r in table.check_results if not r.success} == {"sum_amount", "references_country"}
    assert "Check: sum_amount" in str(table_failure.value)

    file_columns, file_table = one_file
    run(file_columns, postgres_url)  # the first file's rows alone are still good…
    with pytest.raises(AirflowException):  # …but a references subquery reads the whole table
        run(file_table, postgres_url)
    assert {r.name for r in file_table.check_results if not r.success} == {"references_country"}
