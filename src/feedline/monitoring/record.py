"""`feedline_audit.monitoring`: every finding of every monitoring run, and whether it was alerted.

The table is created through the warehouse's dialect, like the ledger, so it lives next to the files it
describes on DuckDB, PostgreSQL and Redshift alike. What was alerted, and when, is what spares people
the same message every hour: a problem still present is alerted again only after `realert_minutes`.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from feedline.contract import ColumnType
from feedline.ledger import AUDIT_SCHEMA
from feedline.monitoring.findings import CheckName, Finding, Status
from feedline.monitoring.queries import aware, naive
from feedline.warehouse.dialect import ColumnDef, TableRef

if TYPE_CHECKING:
    from feedline.warehouse.base import Tx, Warehouse

MONITORING_TABLE = "monitoring"
MONITORING_REF = TableRef(AUDIT_SCHEMA, MONITORING_TABLE)
_TEXT, _NUMBER = ColumnType("string"), ColumnType("float")
COLUMNS: tuple[ColumnDef, ...] = (
    ColumnDef("feed", _TEXT, nullable=False),
    ColumnDef("check", _TEXT, nullable=False),
    ColumnDef("status", _TEXT, nullable=False),
    ColumnDef("observed", _NUMBER),
    ColumnDef("threshold", _NUMBER),
    ColumnDef("message", _TEXT, nullable=False),
    ColumnDef("alerted", ColumnType("bool"), nullable=False),
    ColumnDef("run_id", _TEXT),
    ColumnDef("checked_at", ColumnType("timestamp"), nullable=False),
)
_NAMES = [c.name for c in COLUMNS]
_MAX_TEXT = 4000


@dataclass(frozen=True)
class Previous:
    """What the last run said about one check, and when its current status was last alerted."""

    status: Status
    alerted_at: datetime | None = None


def ensure(warehouse: Warehouse) -> None:
    """Create the audit schema and the monitoring table if missing."""

    def create(tx: Tx) -> None:
        tx.execute(tx.dialect.create_schema(AUDIT_SCHEMA))
        tx.execute(tx.dialect.create_table(MONITORING_REF, COLUMNS))

    warehouse.create_if_missing(create)


def _clip(text: str) -> str:
    return text if len(text) <= _MAX_TEXT else text[: _MAX_TEXT - 20] + " … (message cut)"


def record(
    warehouse: Warehouse,
    findings: Sequence[Finding],
    *,
    alerted: Collection[CheckName],
    run_id: str | None,
    now: datetime,
) -> None:
    """Insert one row per finding, in one transaction."""
    if not findings:
        return
    params: list[Any] = []
    for f in findings:
        params += [f.feed, f.check.value, f.status.value, f.observed, f.threshold, _clip(f.message)]
        params += [f.check in alerted, run_id, naive(now)]
    with warehouse.transaction() as tx:
        d = tx.dialect
        values = ", ".join([f"({d.params(len(_NAMES))})"] * len(findings))
        tx.execute(f"INSERT INTO {d.table(MONITORING_REF)} ({d.columns(_NAMES)}) VALUES {values}", params)


def previous(warehouse: Warehouse, feed: str) -> dict[CheckName, Previous]:
    """Per check of `feed`: the status the latest run recorded, and when that status was last alerted."""
    with warehouse.transaction() as tx:
        d = tx.dialect
        q, p, table = d.quote, d.param, d.table(MONITORING_REF)
        tx.execute(
            f"SELECT {q('check')}, {q('status')} FROM (SELECT {q('check')}, {q('status')}, ROW_NUMBER() "
            f"OVER (PARTITION BY {q('check')} ORDER BY {q('checked_at')} DESC) AS rn FROM {table} "
            f"WHERE {q('feed')} = {p}) AS latest WHERE rn = 1",
            [feed],
        )
        latest = {str(check): Status(status) for check, status in tx.fetchall()}
        tx.execute(
            f"SELECT {q('check')}, {q('status')}, max({q('checked_at')}) FROM {table} "
            f"WHERE {q('feed')} = {p} AND {q('alerted')} = {p} GROUP BY {q('check')}, {q('status')}",
            [feed, True],
        )
        alerts = {(str(check), Status(status)): aware(at) for check, status, at in tx.fetchall()}
    known = {c.value: c for c in CheckName}
    return {
        known[check]: Previous(status, alerts.get((check, status)))
        for check, status in latest.items()
        if check in known
    }


def history(warehouse: Warehouse, feed: str | None = None, limit: int = 200) -> list[dict[str, Any]]:
    """The most recent findings, newest first (for status pages and tests)."""
    with warehouse.transaction() as tx:
        d = tx.dialect
        q, p = d.quote, d.param
        where = f" WHERE {q('feed')} = {p}" if feed else ""
        tx.execute(
            f"SELECT {d.columns(_NAMES)} FROM {d.table(MONITORING_REF)}{where} "
            f"ORDER BY {q('checked_at')} DESC, {q('feed')}, {q('check')} LIMIT {int(limit)}",
            [feed] if feed else [],
        )
        rows = [dict(zip(_NAMES, row, strict=True)) for row in tx.fetchall()]
    for row in rows:
        row["checked_at"] = aware(row["checked_at"])
    return rows
