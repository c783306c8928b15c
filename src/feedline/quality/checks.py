"""Batch checks: compiled to SQL through the warehouse's dialect, run inside the load's transaction.

Where the checks look. A batch is checked in the target, after the merge and before the ledger's
`loaded` mark, inside the load's one transaction: the batch is the target rows whose lineage column
`_feedline_file_id` holds the file's id. When an `error` check fails the transaction rolls back and the
target is exactly as it was. For readers this is the same as checking a staged batch before the merge:
what a transaction writes is invisible to every other session until it commits (PostgreSQL's and
Redshift's snapshots, DuckDB's MVCC), and the rows commit only together with their `loaded` mark.

Why not the staged batch: the bulk path (DuckDB, PostgreSQL) inserts a file straight into the target
with no staged copy, and staging every batch only to check it would write every row twice, passing
batches included. And `unique` asks about the target after the merge (an append repeating a key that
an earlier file loaded), which only the merged table can answer.

What it costs: a blocked batch is written and then undone (dead tuples for PostgreSQL's vacuum; a
slow rollback of a large insert on Redshift); the checks run while the load holds its locks (the
ledger row, the written rows, DuckDB's single writer), lengthening it; and the lineage column has no
index, so every query scans the target's `_feedline_file_id`. Hence the aggregate checks (null_rate,
sum, avg, freshness) share one query, `row_count` uses the count the load already has, and `unique`
and `references` cost one query each. Measured with all eight kinds (docs/quality.md): +0.13 s for a
100,000-row batch into 2 M rows on DuckDB; on PostgreSQL (1 M rows) +0.7 s for a 5,000-row batch (0.2 s
with an index on `_feedline_file_id`) and +1 to 3.5 s for 100,000 rows, mostly `unique`'s join.

Results go to `feedline_audit.checks`: in the load's transaction when the batch is published, in a
transaction of their own after the rollback when it is blocked. A feed without checks runs no query.
The SQL is the same on every backend: quoting and placeholders come from the `Dialect`; the few
things that differ between engines (AVG of an integer is an integer on Redshift, "now" is not the
same function everywhere) are avoided by a CAST and by comparing times in Python.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any

from feedline.contract import ColumnType, Feed
from feedline.errors import QualityCheckError
from feedline.ledger import AUDIT_SCHEMA, LEDGER_TABLE, FileState, utcnow
from feedline.quality.spec import Check, CheckKind, Severity
from feedline.warehouse.dialect import FILE_ID_COLUMN, ColumnDef, Dialect, TableRef, check_file_id

if TYPE_CHECKING:
    from feedline.warehouse.base import Tx, Warehouse

log = logging.getLogger(__name__)

CHECKS_TABLE = "checks"
RUN_ID_ENV = "AIRFLOW_CTX_DAG_RUN_ID"  # set by Airflow in the task process
SAMPLE = 5  # offending keys or values quoted in a message
_MAX_TEXT = 4000
_AGGREGATED = frozenset({CheckKind.null_rate, CheckKind.sum, CheckKind.avg, CheckKind.freshness})
RESULT_COLUMNS: tuple[ColumnDef, ...] = (
    ColumnDef("file_id", ColumnType("string"), nullable=False),
    ColumnDef("feed", ColumnType("string"), nullable=False),
    ColumnDef("run_id", ColumnType("string")),
    ColumnDef("check", ColumnType("string"), nullable=False),
    ColumnDef("severity", ColumnType("string"), nullable=False),
    ColumnDef("passed", ColumnType("bool"), nullable=False),
    ColumnDef("observed", ColumnType("float")),
    ColumnDef("expected", ColumnType("string"), nullable=False),
    ColumnDef("message", ColumnType("string"), nullable=False),
    ColumnDef("checked_at", ColumnType("timestamp"), nullable=False),
)
RESULTS_REF = TableRef(AUDIT_SCHEMA, CHECKS_TABLE)


@dataclass(frozen=True)
class CheckResult:
    """One check's verdict on one batch; `observed` is a number (count, fraction, sum, hours) or None
    when there was nothing to measure, `expected` the bound in words."""

    check: str
    kind: CheckKind
    severity: Severity
    passed: bool
    observed: float | None
    expected: str
    message: str

    @property
    def blocks(self) -> bool:
        """Whether this result stops the batch from being published."""
        return not self.passed and self.severity is Severity.error

    def line(self) -> str:
        return f"{self.check} [{self.severity.value}]: {self.message}"


@dataclass(frozen=True)
class Query:
    sql: str
    params: tuple[Any, ...] = ()


class CheckSQL:
    """The statements of the checks over one batch: the rows of `target` carrying the file's lineage id.

    Only validated identifiers (quoted by the dialect) and bind parameters reach the text; the only
    numbers written into it are LIMITs, which are ints."""

    def __init__(self, dialect: Dialect, target: TableRef, file_id: str) -> None:
        self.d, self.target, self.file_id = dialect, target, check_file_id(file_id)
        self._tbl = dialect.table(target)
        self._lineage = dialect.quote(FILE_ID_COLUMN)

    def aggregate(self, check: Check) -> str:
        """The expression one aggregate check reads; equal expressions are computed once."""
        col = self.d.quote(str(check.column), "column name")
        expressions = {
            CheckKind.null_rate: f"SUM(CASE WHEN {col} IS NULL THEN 1 ELSE 0 END)",
            CheckKind.sum: f"SUM({col})",
            CheckKind.avg: f"AVG(CAST({col} AS DOUBLE PRECISION))",  # Redshift averages ints as ints
            CheckKind.freshness: f"MAX({col})",
        }
        return expressions[check.check]

    def aggregates(self, expressions: Sequence[str]) -> Query:
        """The batch's row count and every aggregate, in one scan."""
        return Query(
            f"SELECT count(*), {', '.join(expressions)} FROM {self._tbl} "
            f"WHERE {self._lineage} = {self.d.param}",
            (self.file_id,),
        )

    def repeated_keys(self, columns: Sequence[str]) -> Query:
        """Keys of the batch that occur more than once in the target: a sample, each row ending with
        how many there are in all."""
        q, keys = self.d.quote, self.d.columns(columns)
        in_t, in_d = self.d.columns(columns, "t."), self.d.columns(columns, "d.")
        same = " AND ".join(f"t.{q(c)} = b.{q(c)}" for c in columns)
        return Query(
            f"SELECT {in_d}, count(*) OVER () FROM (SELECT {in_t} FROM {self._tbl} AS t JOIN "
            f"(SELECT DISTINCT {keys} FROM {self._tbl} WHERE {self._lineage} = {self.d.param}) AS b "
            f"ON {same} GROUP BY {in_t} HAVING count(*) > 1) AS d ORDER BY {in_d} LIMIT {SAMPLE}",
            (self.file_id,),
        )

    def missing_references(self, column: str, table: TableRef, key: str) -> Query:
        """Distinct non-null values of the batch's `column` absent from `table.key`: a sample, each row
        ending with how many there are in all."""
        col, ref_key = self.d.quote(column, "column name"), self.d.quote(key, "column name")
        return Query(
            f"SELECT m.v, count(*) OVER () FROM (SELECT DISTINCT b.{col} AS v FROM {self._tbl} AS b "
            f"WHERE b.{self._lineage} = {self.d.param} AND b.{col} IS NOT NULL AND NOT EXISTS "
            f"(SELECT 1 FROM {self.d.table(table)} AS r WHERE r.{ref_key} = b.{col})) AS m "
            f"ORDER BY m.v LIMIT {SAMPLE}",
            (self.file_id,),
        )

    def columns_of(self, table: TableRef) -> Query:
        return Query(self.d.list_columns(), (table.schema, table.name))

    def history(self, feed: str, over_last: int) -> Query:
        """rows_loaded of the feed's last `over_last` loaded files, newest first, from the ledger."""
        q, p = self.d.quote, self.d.param
        return Query(
            f"SELECT {q('rows_loaded')} FROM {self.d.table(TableRef(AUDIT_SCHEMA, LEDGER_TABLE))} "
            f"WHERE {q('feed')} = {p} AND {q('state')} = {p} AND {q('file_id')} <> {p} "
            f"AND {q('rows_loaded')} IS NOT NULL ORDER BY {q('loaded_at')} DESC LIMIT {int(over_last)}",
            (feed, FileState.loaded.value, self.file_id),
        )


@dataclass
class _Batch:
    tx: Tx
    sql: CheckSQL
    feed: Feed
    rows: int  # rows the load published
    counted: int  # rows the aggregate query saw (the same, when it ran)
    values: dict[str, Any]

    def run(self, query: Query) -> list[tuple[Any, ...]]:
        self.tx.execute(query.sql, query.params)
        return self.tx.fetchall()


def evaluate(tx: Tx, feed: Feed, target: TableRef, file_id: str, rows: int) -> list[CheckResult]:
    """Every check of `feed` on the batch of `file_id` in `target` (the load published `rows` rows)."""
    sql = CheckSQL(tx.dialect, target, file_id)
    batch = _Batch(tx, sql, feed, rows, 0, {})
    expressions = list(dict.fromkeys(sql.aggregate(c) for c in feed.checks if c.check in _AGGREGATED))
    if expressions:
        row = batch.run(sql.aggregates(expressions))[0]
        batch.counted, batch.values = int(row[0]), dict(zip(expressions, row[1:], strict=True))
    return [_EVALUATORS[check.check](batch, check) for check in feed.checks]


def check_batch(warehouse: Warehouse, tx: Tx, feed: Feed, file_id: str, rows: int) -> list[CheckResult]:
    """Gate a batch inside its load's transaction `tx`; a feed without checks costs nothing.

    Each result is logged as one structured line and recorded in `tx`, so it commits with the batch.
    If an `error` check failed, raises `QualityCheckError` carrying the results and listing every
    failed check: the caller's rollback leaves the target unchanged, and it records them on their own
    (`record_results`)."""
    if not feed.checks:
        return []
    results = evaluate(tx, feed, warehouse.target(feed), file_id, rows)
    for result in results:
        _log(feed.name, file_id, result)
    failed = [r for r in results if not r.passed]
    if any(r.blocks for r in failed):
        raise QualityCheckError(
            f"{len(failed)} batch check(s) failed, nothing was published: "
            + "; ".join(r.line() for r in failed),
            results,
        )
    _insert(tx, feed.name, file_id, results)
    return results


def record_results(warehouse: Warehouse, feed: str, file_id: str, results: Sequence[CheckResult]) -> None:
    """Record a blocked batch's results in a transaction of their own (its load rolled back)."""
    if results:
        with warehouse.transaction() as tx:
            _insert(tx, feed, file_id, results)


# --- one evaluator per kind ----------------------------------------------------------------------


def _row_count(batch: _Batch, check: Check) -> CheckResult:
    expected = _bounds(check.min, check.max)
    return _result(
        check, _within(batch.rows, check.min, check.max), batch.rows, expected, f"{batch.rows:,} rows"
    )


def _row_count_change(batch: _Batch, check: Check) -> CheckResult:
    limit = float(check.max_change or 0)
    earlier = [int(r[0]) for r in batch.run(batch.sql.history(batch.feed.name, check.over_last))]
    expected = f"within ±{_pct(limit)} of the mean rows of the last {check.over_last} loads"
    if not earlier:
        return _result(check, True, None, expected, "no earlier load of the feed to compare with")
    mean = sum(earlier) / len(earlier)
    what = f"{batch.rows:,} rows vs a mean of {_num(mean)} over the last {len(earlier)} load(s)"
    if mean == 0:
        return _result(check, batch.rows == 0, 0.0 if batch.rows == 0 else None, expected, what)
    change = (batch.rows - mean) / mean
    return _result(check, abs(change) <= limit, change, expected, f"{what}: {change:+.0%}")


def _null_rate(batch: _Batch, check: Check) -> CheckResult:
    nulls, rows = int(batch.values[batch.sql.aggregate(check)] or 0), batch.counted
    limit = float(check.max or 0)
    expected = f"at most {_pct(limit)} null"
    if rows == 0:
        return _result(check, True, None, expected, "the batch is empty: no null rate to measure")
    rate = nulls / rows
    what = f"{nulls:,} of {rows:,} rows ({_pct(rate)}) have no {check.column}"
    return _result(check, nulls <= limit * rows + 1e-9, rate, expected, what)


def _sum(batch: _Batch, check: Check) -> CheckResult:
    total = float(batch.values[batch.sql.aggregate(check)] or 0)  # SUM of no rows is 0, not NULL
    what = f"the sum of {check.column} is {_num(total)}"
    return _result(check, _within(total, check.min, check.max), total, _bounds(check.min, check.max), what)


def _avg(batch: _Batch, check: Check) -> CheckResult:
    value = batch.values[batch.sql.aggregate(check)]
    expected = _bounds(check.min, check.max)
    if value is None:
        return _result(check, True, None, expected, f"no value of {check.column} to average: not measured")
    mean = float(value)
    what = f"the average of {check.column} is {_num(mean)}"
    return _result(check, _within(mean, check.min, check.max), mean, expected, what)


def _freshness(batch: _Batch, check: Check) -> CheckResult:
    newest, limit = batch.values[batch.sql.aggregate(check)], float(check.max_age_hours or 0)
    expected = f"newest value at most {_num(limit)} h old"
    if newest is None:
        return _result(check, False, None, expected, f"the batch has no value of {check.column}")
    when = _utc(newest)
    age = (utcnow() - when).total_seconds() / 3600
    what = f"the newest {check.column} is {when:%Y-%m-%d %H:%M:%S}, {_num(round(age, 1))} h old"
    return _result(check, age <= limit, age, expected, what)


def _unique(batch: _Batch, check: Check) -> CheckResult:
    rows = batch.run(batch.sql.repeated_keys(check.columns))
    repeated = int(rows[0][-1]) if rows else 0
    keys = f"({', '.join(check.columns)})"
    expected = "no repeated key"
    if not repeated:
        return _result(check, True, 0, expected, f"no key {keys} of the batch repeats in {batch.sql.target}")
    sample = ", ".join(_literal(r[:-1]) for r in rows)
    what = f"{repeated:,} key(s) {keys} occur more than once in {batch.sql.target}, e.g. {sample}"
    return _result(check, False, repeated, expected, what)


def _references(batch: _Batch, check: Check) -> CheckResult:
    table = TableRef(check.schema_ or batch.sql.target.schema, str(check.table))
    key, column = str(check.key), str(check.column)
    expected = f"every value in {table}.{key}"
    columns = {str(r[0]).lower() for r in batch.run(batch.sql.columns_of(table))}
    if key.lower() not in columns:
        what = f"{table}.{key} does not exist; create it, or fix the check's schema, table or key"
        return _result(check, False, None, expected, what)
    rows = batch.run(batch.sql.missing_references(column, table, key))
    missing = int(rows[0][-1]) if rows else 0
    if not missing:
        return _result(check, True, 0, expected, f"every value of {column} is in {table}.{key}")
    sample = ", ".join(_literal(r[0]) for r in rows)
    what = f"{missing:,} value(s) of {column} are missing from {table}.{key}, e.g. {sample}"
    return _result(check, False, missing, expected, what)


_EVALUATORS: dict[CheckKind, Callable[[_Batch, Check], CheckResult]] = {
    CheckKind.unique: _unique,
    CheckKind.row_count: _row_count,
    CheckKind.row_count_change: _row_count_change,
    CheckKind.null_rate: _null_rate,
    CheckKind.sum: _sum,
    CheckKind.avg: _avg,
    CheckKind.freshness: _freshness,
    CheckKind.references: _references,
}


# --- recording and reading results -------------------------------------------------------------


def _insert(tx: Tx, feed: str, file_id: str, results: Sequence[CheckResult]) -> None:
    if not results:
        return
    d, now, run_id = tx.dialect, utcnow(), os.environ.get(RUN_ID_ENV) or None
    names = [c.name for c in RESULT_COLUMNS]
    values = ", ".join([f"({d.params(len(names))})"] * len(results))
    params: list[Any] = []
    for r in results:
        params += [file_id, feed, run_id, r.check, r.severity.value, r.passed, r.observed]
        params += [_clip(r.expected), _clip(r.message), now]
    tx.execute(f"INSERT INTO {d.table(RESULTS_REF)} ({d.columns(names)}) VALUES {values}", params)


def _log(feed: str, file_id: str, result: CheckResult) -> None:
    """One structured line per result: failures at WARNING, so log searches find them."""
    log.log(
        logging.INFO if result.passed else logging.WARNING,
        "feedline.check feed=%s file_id=%s check=%s severity=%s passed=%s observed=%s expected=%r message=%r",
        feed,
        file_id,
        result.check,
        result.severity.value,
        str(result.passed).lower(),
        "null" if result.observed is None else _num(result.observed),
        result.expected,
        result.message,
    )


def _has_results_table(tx: Tx) -> bool:
    tx.execute(tx.dialect.list_tables(), [AUDIT_SCHEMA])
    return CHECKS_TABLE in {str(r[0]) for r in tx.fetchall()}


def latest_results(warehouse: Warehouse, feed: str | None = None) -> list[dict[str, Any]]:
    """The most recent result of every (feed, check), by feed then check; [] before any check ran."""
    d = warehouse.dialect
    q, p = d.quote, d.param
    fields = ["feed", "check", "severity", "passed", "observed", "expected", "message", "checked_at"]
    where = f" WHERE {q('feed')} = {p}" if feed else ""
    sql = (
        f"SELECT {d.columns(fields)} FROM (SELECT {d.columns(fields)}, ROW_NUMBER() OVER (PARTITION BY "
        f"{q('feed')}, {q('check')} ORDER BY {q('checked_at')} DESC) AS rn FROM {d.table(RESULTS_REF)}"
        f"{where}) AS latest WHERE rn = 1 ORDER BY {q('feed')}, {q('check')}"
    )
    with warehouse.transaction() as tx:
        if not _has_results_table(tx):
            return []
        tx.execute(sql, [feed] if feed else [])
        return [dict(zip(fields, row, strict=True)) for row in tx.fetchall()]


def failed_results(warehouse: Warehouse, feed: str | None = None, limit: int = 50) -> list[dict[str, Any]]:
    """Failed checks with the file they failed on (key, version, its state now), newest first."""
    d = warehouse.dialect
    q, p = d.quote, d.param
    fields = ["feed", "key", "version", "state", "check", "severity", "message", "checked_at"]
    columns = ", ".join(
        f"f.{q(name)}" if name in ("key", "version", "state") else f"c.{q(name)}" for name in fields
    )
    where = f" AND c.{q('feed')} = {p}" if feed else ""
    sql = (
        f"SELECT {columns} FROM {d.table(RESULTS_REF)} AS c LEFT JOIN "
        f"{d.table(TableRef(AUDIT_SCHEMA, LEDGER_TABLE))} AS f ON f.{q('file_id')} = c.{q('file_id')} "
        f"WHERE c.{q('passed')} = FALSE{where} ORDER BY c.{q('checked_at')} DESC, c.{q('check')} "
        f"LIMIT {int(limit)}"
    )
    with warehouse.transaction() as tx:
        if not _has_results_table(tx):
            return []
        tx.execute(sql, [feed] if feed else [])
        return [dict(zip(fields, row, strict=True)) for row in tx.fetchall()]


# --- wording -----------------------------------------------------------------------------------


def _result(check: Check, passed: bool, observed: float | None, expected: str, what: str) -> CheckResult:
    return CheckResult(
        check.label, check.check, check.severity, passed, observed, expected, f"{what} (expected {expected})"
    )


def _within(value: float, low: float | None, high: float | None) -> bool:
    return (low is None or value >= low) and (high is None or value <= high)


def _bounds(low: float | None, high: float | None) -> str:
    if low is not None and high is not None:
        return f"between {_num(low)} and {_num(high)}"
    return f"at least {_num(low)}" if low is not None else f"at most {_num(high or 0)}"


def _num(value: float) -> str:
    """A number as a person writes it: 1,200 / 0.05 / -10.5 (at most 4 decimals)."""
    if float(value).is_integer():
        return f"{int(value):,}"
    return f"{value:,.4f}".rstrip("0").rstrip(".")


def _pct(fraction: float) -> str:
    return f"{fraction * 100:.4g}%"


def _literal(value: Any) -> str:
    if isinstance(value, tuple):
        return "(" + ", ".join(_literal(v) for v in value) + ")"
    return repr(value) if isinstance(value, str) else str(value)


def _utc(value: date | datetime) -> datetime:
    """A column's value as naive UTC, the way feedline stores timestamps; a date counts from midnight."""
    if not isinstance(value, datetime):
        return datetime(value.year, value.month, value.day)
    return value if value.tzinfo is None else value.astimezone(UTC).replace(tzinfo=None)


def _clip(text: str) -> str:
    return text if len(text) <= _MAX_TEXT else text[: _MAX_TEXT - 20] + " … (message cut)"
