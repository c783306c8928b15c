"""What a notification says: one plain message per event (a file failed or was quarantined, a run succeeded).

Pure Python, free of Airflow, so the wording is tested without a scheduler and any sender (the Airflow
notifiers, a Lambda, the CLI) can reuse it. The message always ends with what to do next.
"""

from __future__ import annotations

import html
import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum

#: Longest error text carried in a message; the task log has the rest.
MAX_ERROR_CHARS = 1500
CONTROL = re.compile(r"[\x00-\x1f\x7f]+")


class Event(StrEnum):
    failure = "failure"
    success = "success"
    quarantine = "quarantine"


#: The state a message reports for each event.
STATES = {Event.failure: "failed", Event.success: "succeeded", Event.quarantine: "quarantined"}


@dataclass(frozen=True)
class Notice:
    """The facts of one event, gathered by whoever noticed it."""

    feed: str
    event: Event
    key: str | None = None
    error: str | None = None
    task: str | None = None
    try_number: int | None = None
    run_id: str | None = None
    log_url: str | None = None
    counts: Mapping[str, int] = field(default_factory=dict)

    @property
    def state(self) -> str:
        return STATES[self.event]


@dataclass(frozen=True)
class Message:
    """One message in the three shapes the routes need: an email subject and HTML body, a chat text."""

    subject: str
    text: str
    html: str


def shorten(text: str, limit: int = MAX_ERROR_CHARS) -> str:
    """Keep the start of a long error (where the cause is named) and say how much was cut."""
    text = text.strip()
    if len(text) <= limit:
        return text
    return f"{text[:limit].rstrip()} … ({len(text) - limit} more characters in the task log)"


def headline(notice: Notice) -> str:
    """What happened, in a few words: 'a.csv failed in process.transform'."""
    if notice.event is Event.success:
        files = notice.counts.get("files")
        return "run succeeded" + (f", {files} file(s)" if files is not None else "")
    if notice.key:
        where = f" in {notice.task}" if notice.task and notice.event is Event.failure else ""
        return f"{notice.key} {notice.state}{where}"
    return f"task {notice.task} {notice.state}" if notice.task else f"run {notice.state}"


def subject(notice: Notice) -> str:
    """One line whatever the key holds: control characters would break the email header."""
    line = f"[feedline] {notice.feed}: {headline(notice)}"
    return CONTROL.sub(" ", line)


def next_step(notice: Notice) -> str:
    """The action a reader takes, with the command to run when there is one."""
    replay = f"feedline replay --feed {notice.feed}" + (
        f" --file {shlex.quote(notice.key)}" if notice.key else ""
    )
    if notice.event is Event.quarantine:
        return f"fix the file or the feed's contract (the error says which), then run `{replay}`"
    if notice.event is Event.failure and notice.key:
        return f"fix the cause in the error and the log (retries are exhausted), then run `{replay}`"
    if notice.event is Event.failure:
        return "fix the cause in the error and the log; the feed's next run picks up every waiting file"
    return "nothing to do"


def fields(notice: Notice) -> list[tuple[str, str]]:
    """The message's lines as (label, value), in reading order; absent facts are left out."""
    rows = [("Feed", notice.feed), ("State", notice.state)]
    if notice.key:
        rows.append(("File", notice.key))
    if notice.task:
        tries = f" (try {notice.try_number})" if notice.try_number else ""
        rows.append(("Task", f"{notice.task}{tries}"))
    if notice.run_id:
        rows.append(("Run", notice.run_id))
    if notice.counts:
        rows.append(("Counts", ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in notice.counts.items())))
    if notice.error:
        rows.append(("Error", shorten(notice.error)))
    if notice.log_url:
        rows.append(("Log", notice.log_url))
    rows.append(("Next", next_step(notice)))
    return rows


def text_of(notice: Notice) -> str:
    lines = [f"feedline · {notice.feed}: {headline(notice)}"]
    lines += [f"{label}: {value}" for label, value in fields(notice)]
    return "\n".join(lines)


def html_of(notice: Notice) -> str:
    cells = []
    for label, value in fields(notice):
        shown = html.escape(value)
        if label == "Log":
            shown = f'<a href="{html.escape(value, quote=True)}">{shown}</a>'
        elif label == "Error":
            shown = f'<pre style="white-space: pre-wrap; margin: 0">{shown}</pre>'
        cells.append(f'<tr><th align="left" valign="top">{label}</th><td>{shown}</td></tr>')
    return (
        f"<p>{html.escape(subject(notice))}</p>\n"
        f'<table cellpadding="4" style="border-collapse: collapse">\n' + "\n".join(cells) + "\n</table>\n"
    )


def compose(notice: Notice) -> Message:
    """The message for one event."""
    return Message(subject=subject(notice), text=text_of(notice), html=html_of(notice))
