"""What a monitoring check says about one feed: a status, the number it measured, the bound it holds."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass
from enum import StrEnum
from typing import Any


class Status(StrEnum):
    ok = "ok"
    warn = "warn"
    fail = "fail"


class CheckName(StrEnum):
    """Every check the monitoring runs, in the order it runs them; `deadline` is reported by a feed
    DAG's deadline alert (a run still unfinished `sla.loaded_within_minutes` after it was queued)."""

    warehouse = "warehouse"
    freshness = "freshness"
    latency = "latency"
    backlog = "backlog"
    stuck = "stuck"
    reconciliation = "reconciliation"
    quarantine_rate = "quarantine_rate"
    deadline = "deadline"


@dataclass(frozen=True)
class Finding:
    """One check's verdict on one feed.

    `observed` is the measured number (minutes, files, rows, a fraction) or None when there was nothing
    to measure; `threshold` the bound it is held to, or None when the check has no bound (warehouse).
    The message says what was seen, what was expected and, when it is a problem, what to do.
    """

    feed: str
    check: CheckName
    status: Status
    message: str
    observed: float | None = None
    threshold: float | None = None

    @property
    def problem(self) -> bool:
        return self.status is not Status.ok

    def as_dict(self) -> dict[str, Any]:
        """JSON-able, for XCom and logs."""
        data = asdict(self)
        data["check"], data["status"] = self.check.value, self.status.value
        return data

    def line(self) -> str:
        return f"{self.status.value.upper()} {self.feed}.{self.check.value}: {self.message}"


def worst(findings: Iterable[Finding]) -> Status:
    """fail over warn over ok; ok for no findings."""
    order = list(Status)
    return max((f.status for f in findings), key=order.index, default=Status.ok)
