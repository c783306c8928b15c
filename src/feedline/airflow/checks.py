"""A feed's batch checks as Airflow's common-sql check operators, for a team's own DAGs.

feedline runs a feed's checks on every batch inside its load (`feedline.quality.checks`). A team that
wants the same rules as tasks of its own DAGs (after a backfill, on a schedule, on a table another tool
writes) gets them here as `SQLColumnCheckOperator` / `SQLTableCheckOperator`, from the same `Check`
list. Limits, all from what those operators can express:

- They check the whole published table, or the rows a `partition_clause` selects (e.g. one file:
  `file_partition(file_id)`), not "the batch": `row_count`, `sum` and `avg` bounds written for one
  file mean something else over a whole table.
- `row_count_change` compares a batch with the ledger's earlier loads; it has no table-level meaning
  and is left out (`SqlChecks.skipped` says so).
- `unique` over several columns and `references` use subqueries over the whole table, which a
  `partition_clause` does not narrow; `unique` on one column narrows to the partition.
- Column checks put the column name into SQL unquoted (the operator's template), so only lowercase,
  non-reserved names use `column_mapping`; other names get the equivalent table check with quoting.
- A failed check fails the task: `warn` checks are left out unless asked for (`severities`), and are
  then best put in a task of their own whose failure the DAG tolerates.
- The connection's hook must speak common-sql (`DbApiHook`): a `postgres` connection needs
  `apache-airflow-providers-postgres`, Redshift `apache-airflow-providers-amazon`.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any

from feedline.contract import Feed
from feedline.quality.spec import Check, CheckKind, Severity
from feedline.warehouse.dialect import FILE_ID_COLUMN, Dialect, TableRef, check_file_id

log = logging.getLogger(__name__)

_PLAIN = re.compile(r"^[a-z_][a-z0-9_]*$")
# PostgreSQL's reserved keywords (pg_get_keywords(), categories R and T) plus a few more of Redshift's.
_RESERVED = frozenset(
    """all analyse analyze and any array as asc asymmetric authorization binary both case cast check collate
    collation column concurrently constraint create cross current_catalog current_date current_role
    current_schema current_time current_timestamp current_user default deferrable desc distinct do else
    end except false fetch for foreign freeze from full grant group having ilike in initially inner
    intersect into is isnull join lateral leading left like limit localtime localtimestamp natural not
    notnull null offset on only or order outer overlaps placing primary references returning right select
    session_user similar some symmetric table tablesample then to trailing true union unique user using
    variadic verbose when where window with delta new old open partition percent tag""".split()  # noqa: SIM905
)
# The current time as a naive UTC timestamp, the way feedline stores times.
_NOW_UTC = {"redshift": "GETDATE()"}
_NOW_UTC_DEFAULT = "(CURRENT_TIMESTAMP AT TIME ZONE 'UTC')"


@dataclass
class SqlChecks:
    """What the operators are built from: the quoted table, the column and table checks, and the
    checks that do not map (label → why)."""

    table: str
    column_mapping: dict[str, dict[str, Any]] = field(default_factory=dict)
    table_checks: dict[str, dict[str, str]] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)


def file_partition(file_id: str, dialect: Dialect | None = None) -> str:
    """A `partition_clause` selecting the rows one file loaded (its lineage id, validated as hex)."""
    d = dialect or _default_dialect()
    return f"{d.quote(FILE_ID_COLUMN)} = '{check_file_id(file_id)}'"


def sql_checks(
    feed: Feed,
    dialect: Dialect | None = None,
    *,
    severities: Collection[Severity] = (Severity.error,),
) -> SqlChecks:
    """Translate the feed's checks of the given severities for the common-sql operators."""
    d = dialect or _default_dialect()
    target = TableRef(feed.target.schema_ or d.default_schema, feed.target.table)
    result = SqlChecks(table=d.table(target))
    for check in feed.checks:
        if check.severity not in severities:
            result.skipped[check.label] = f"severity {check.severity.value} not requested"
        elif check.check is CheckKind.row_count_change:
            result.skipped[check.label] = "compares a batch with earlier loads; feedline runs it in the load"
        elif not _as_column_check(check, result.column_mapping):
            result.table_checks[check.label] = {"check_statement": _statement(check, d, target)}
    return result


def check_operators(
    feed: Feed,
    *,
    conn_id: str,
    dialect: Dialect | None = None,
    severities: Collection[Severity] = (Severity.error,),
    partition_clause: str | None = None,
    task_id_prefix: str | None = None,
    **operator_kwargs: Any,
) -> list[Any]:
    """`SQLColumnCheckOperator` and/or `SQLTableCheckOperator` tasks running the feed's checks on its
    published table through Airflow connection `conn_id`. Call inside a DAG context; extra keyword
    arguments (retries, pool, …) go to both operators."""
    from airflow.providers.common.sql.operators.sql import SQLColumnCheckOperator, SQLTableCheckOperator

    checks = sql_checks(feed, dialect, severities=severities)
    for label, why in checks.skipped.items():
        log.info("Feed %s: check %s is not built as an Airflow check: %s", feed.name, label, why)
    prefix = task_id_prefix or f"{feed.name}_checks"
    common: dict[str, Any] = {"conn_id": conn_id, "table": checks.table, "partition_clause": partition_clause}
    operators: list[Any] = []
    if checks.column_mapping:
        operators.append(
            SQLColumnCheckOperator(
                task_id=f"{prefix}_columns", column_mapping=checks.column_mapping, **common, **operator_kwargs
            )
        )
    if checks.table_checks:
        operators.append(
            SQLTableCheckOperator(
                task_id=f"{prefix}_table", checks=checks.table_checks, **common, **operator_kwargs
            )
        )
    return operators


def _as_column_check(check: Check, mapping: dict[str, dict[str, Any]]) -> bool:
    """Add a check the column operator can express exactly (no null / no repeat in one plain column)."""
    if check.check is CheckKind.null_rate and check.max == 0:
        name, kind = str(check.column), "null_check"
    elif check.check is CheckKind.unique and len(check.columns) == 1:
        name, kind = check.columns[0], "unique_check"
    else:
        return False
    if not _PLAIN.match(name) or name in _RESERVED or kind in mapping.get(name, {}):
        return False
    mapping.setdefault(name, {})[kind] = {"equal_to": 0}
    return True


def _statement(check: Check, d: Dialect, target: TableRef) -> str:
    """A boolean over aggregates (one row even for an empty table) saying the check holds."""
    col = d.quote(check.column) if check.column else ""
    table = d.table(target)
    if check.check is CheckKind.unique:
        keys = d.columns(check.columns)
        present = " AND ".join(f"{d.quote(c)} IS NOT NULL" for c in check.columns)
        return (
            f"COUNT(*) >= 0 AND (SELECT COUNT(*) FROM (SELECT {keys} FROM {table} WHERE {present} "
            f"GROUP BY {keys} HAVING COUNT(*) > 1) AS repeated) = 0"
        )
    if check.check is CheckKind.row_count:
        return _between("COUNT(*)", check.min, check.max)
    if check.check is CheckKind.null_rate:
        return f"SUM(CASE WHEN {col} IS NULL THEN 1 ELSE 0 END) <= {_number(check.max or 0)} * COUNT(*)"
    if check.check is CheckKind.sum:
        return _between(f"COALESCE(SUM({col}), 0)", check.min, check.max)
    if check.check is CheckKind.avg:
        mean = f"AVG(CAST({col} AS DOUBLE PRECISION))"
        return f"{mean} IS NULL OR ({_between(mean, check.min, check.max)})"
    if check.check is CheckKind.freshness:
        seconds = round(float(check.max_age_hours or 0) * 3600)
        now = _NOW_UTC.get(d.name, _NOW_UTC_DEFAULT)
        return f"MAX({col}) >= {now} - INTERVAL '{seconds} seconds'"
    if check.check is CheckKind.references:
        ref = d.table(TableRef(check.schema_ or target.schema, str(check.table)))
        return (
            f"COUNT(*) >= 0 AND NOT EXISTS (SELECT 1 FROM {table} AS b WHERE b.{col} IS NOT NULL AND "
            f"NOT EXISTS (SELECT 1 FROM {ref} AS r WHERE r.{d.quote(str(check.key))} = b.{col}))"
        )
    raise ValueError(f"check {check.check.value} has no table check")


def _between(expr: str, low: float | None, high: float | None) -> str:
    parts = []
    if low is not None:
        parts.append(f"{expr} >= {_number(low)}")
    if high is not None:
        parts.append(f"{expr} <= {_number(high)}")
    return " AND ".join(parts)


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def _default_dialect() -> Dialect:
    from feedline.warehouse.postgres import PostgresDialect

    return PostgresDialect()
