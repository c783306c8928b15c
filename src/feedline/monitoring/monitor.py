"""One monitoring pass over one feed: run the checks, alert what is due, record every finding."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from feedline.contract import Notify
from feedline.monitoring import record as records
from feedline.monitoring.alerts import compose, due
from feedline.monitoring.checks import run_checks
from feedline.monitoring.findings import CheckName, Finding, Status
from feedline.notify import Message

if TYPE_CHECKING:
    from feedline.pipeline import FeedPipeline

log = logging.getLogger(__name__)

#: Delivers a message on a feed's routes and returns the routes that took it (see feedline.airflow.notify).
Sender = Callable[[Notify, Message], list[str]]


@dataclass
class FeedReport:
    """What one pass found about one feed, which routes carried its alert, and whether it was recorded."""

    feed: str
    findings: list[Finding] = field(default_factory=list)
    routes: list[str] = field(default_factory=list)
    recorded: bool = False

    @property
    def problems(self) -> list[Finding]:
        return [f for f in self.findings if f.problem]

    def as_dict(self) -> dict[str, Any]:
        return {
            "feed": self.feed,
            "findings": [f.as_dict() for f in self.findings],
            "routes": self.routes,
            "recorded": self.recorded,
        }


def _log(finding: Finding) -> None:
    """One structured line per finding; problems at WARNING so that log searches find them."""
    log.log(
        logging.INFO if finding.status is Status.ok else logging.WARNING,
        "feedline.monitor feed=%s check=%s status=%s observed=%s threshold=%s message=%r",
        finding.feed,
        finding.check.value,
        finding.status.value,
        finding.observed,
        finding.threshold,
        finding.message,
    )


def monitor_feed(
    pipeline: FeedPipeline,
    *,
    now: datetime | None = None,
    run_id: str | None = None,
    send: Sender | None = None,
    run_url: str | None = None,
) -> FeedReport:
    """Check one feed, alert through `send` what is due, and record the findings.

    Alerting does not depend on recording: with the warehouse down, its finding is still sent (every
    run, since no earlier alert can be looked up), and nothing is recorded.
    """
    feed = pipeline.feed
    now = now or datetime.now(UTC)
    report = FeedReport(feed.name, run_checks(pipeline, now))
    for finding in report.findings:
        _log(finding)
    reachable = report.findings[0].status is Status.ok
    before: dict[CheckName, records.Previous] = {}
    if reachable:
        try:
            records.ensure(pipeline.warehouse)
            before = records.previous(pipeline.warehouse, feed.name)
        except Exception:
            log.exception("feed %s: earlier monitoring results unreadable; alerting every problem", feed.name)
    alert = due(feed, report.findings, before, now)
    if alert and feed.monitoring.alert and feed.notify.has_routes and send is not None:
        report.routes = send(feed.notify, compose(alert, run_url))
    elif alert:
        log.info("feed %s: no notify route set (or monitoring.alert is false); nothing sent", feed.name)
    if reachable:
        try:
            alerted = alert.checks if report.routes else set()
            records.record(pipeline.warehouse, report.findings, alerted=alerted, run_id=run_id, now=now)
            report.recorded = True
        except Exception:
            log.exception("feed %s: the monitoring findings could not be recorded", feed.name)
    return report
