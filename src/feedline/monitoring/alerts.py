"""Which findings to alert, and the one message per feed that carries them.

A problem (warn or fail) is alerted when it is new, when its status changed, or when it was last
alerted more than `monitoring.realert_minutes` ago; a check back to ok after a problem is alerted once
as a recovery. The message uses the notification module's shape (subject, text, HTML) so the same
routes — email, Slack — carry it.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from feedline.contract import Feed
from feedline.monitoring.findings import CheckName, Finding, Status, worst
from feedline.monitoring.record import Previous
from feedline.notify import CONTROL, Message, shorten


@dataclass(frozen=True)
class Alert:
    """The findings one message reports: problems due now, and checks that recovered."""

    feed: str
    problems: list[Finding] = field(default_factory=list)
    recovered: list[Finding] = field(default_factory=list)

    @property
    def checks(self) -> set[CheckName]:
        return {f.check for f in (*self.problems, *self.recovered)}

    def __bool__(self) -> bool:
        return bool(self.problems or self.recovered)


def due(
    feed: Feed, findings: Sequence[Finding], before: Mapping[CheckName, Previous], now: datetime
) -> Alert:
    """Select what to alert from this run's findings, given what the previous runs recorded."""
    again = timedelta(minutes=feed.monitoring.realert_minutes)
    alert = Alert(feed.name)
    for finding in findings:
        prev = before.get(finding.check)
        if finding.problem:
            last = prev.alerted_at if prev is not None and prev.status is finding.status else None
            if last is None or now - last >= again:
                alert.problems.append(finding)
        elif prev is not None and prev.status is not Status.ok:
            alert.recovered.append(finding)
    return alert


def subject(alert: Alert) -> str:
    if alert.problems:
        names = ", ".join(f.check.value for f in alert.problems)
        head = f"{worst(alert.problems).value.upper()} {len(alert.problems)} monitoring problem(s): {names}"
    else:
        head = "recovered: " + ", ".join(f.check.value for f in alert.recovered)
    return CONTROL.sub(" ", f"[feedline] {alert.feed}: {head}")


def _rows(alert: Alert) -> list[tuple[str, str, str]]:
    rows = [(f.status.value.upper(), f.check.value, shorten(f.message)) for f in alert.problems]
    rows += [("RECOVERED", f.check.value, shorten(f.message)) for f in alert.recovered]
    return rows


def compose(alert: Alert, run_url: str | None = None) -> Message:
    """The message for one feed's alert: one line per finding, each with its measurement and its fix."""
    lines = [f"feedline · {alert.feed}: monitoring"]
    lines += [f"{status} {check}: {text}" for status, check, text in _rows(alert)]
    if run_url:
        lines.append(f"Monitoring run: {run_url}")
    cells = "\n".join(
        f'<tr><th align="left" valign="top">{status}</th><td valign="top">{check}</td>'
        f"<td>{html.escape(text)}</td></tr>"
        for status, check, text in _rows(alert)
    )
    link = f'<p><a href="{html.escape(run_url, quote=True)}">Monitoring run</a></p>\n' if run_url else ""
    body = (
        f"<p>{html.escape(subject(alert))}</p>\n"
        f'<table cellpadding="4" style="border-collapse: collapse">\n{cells}\n</table>\n{link}'
    )
    return Message(subject=subject(alert), text="\n".join(lines), html=body)
