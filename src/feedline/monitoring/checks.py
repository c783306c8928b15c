"""The monitoring checks of one feed, as plain Python over its pipeline (source, ledger, warehouse).

Each check returns a `Finding`, or None when it does not apply to the feed (no SLA declared, a load
mode that replaces rows). `run_checks` runs them all; a check that cannot run becomes a `fail` finding
naming why, and never stops the others. `now` is passed in so that a test can look from the future.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from feedline.contract import LoadMode
from feedline.ledger import IN_FLIGHT, FileState, file_id_of
from feedline.monitoring import queries
from feedline.monitoring.findings import CheckName, Finding, Status

if TYPE_CHECKING:
    from feedline.pipeline import FeedPipeline

log = logging.getLogger(__name__)

Check = Callable[["FeedPipeline", datetime], Finding | None]
SAMPLE = 5  # files named in a message


def duration(minutes: float) -> str:
    """45 min, 3.2 h, 2.0 days: a span a person reads at a glance."""
    if minutes < 120:
        return f"{minutes:.0f} min"
    if minutes < 48 * 60:
        return f"{minutes / 60:.1f} h"
    return f"{minutes / 1440:.1f} days"


def _minutes(delta: timedelta) -> float:
    return delta.total_seconds() / 60


def _named(items: list[str]) -> str:
    shown = ", ".join(items[:SAMPLE])
    return shown + (f" and {len(items) - SAMPLE} more" if len(items) > SAMPLE else "")


def _status_hint(feed: str, options: str = "--files") -> str:
    return f"`feedline status --feed {feed} {options}`"


def warehouse(pipeline: FeedPipeline, now: datetime) -> Finding:
    """The warehouse answers a query and holds the audit tables; when not, the other checks are skipped."""
    name = pipeline.feed.name
    started, where = time.monotonic(), "(not configured)"
    try:
        where = repr(pipeline.warehouse)
        with pipeline.warehouse.transaction() as tx:
            queries.ping(tx)
        pipeline.ledger.ensure()
    except Exception as exc:
        return Finding(
            name,
            CheckName.warehouse,
            Status.fail,
            f"warehouse {where} is unreachable ({type(exc).__name__}: {exc}); the other checks of this "
            "feed were skipped — check the warehouse connection and that its server is up",
        )
    seconds = time.monotonic() - started
    return Finding(
        name, CheckName.warehouse, Status.ok, f"answered in {seconds:.2f}s", observed=round(seconds, 3)
    )


def freshness(pipeline: FeedPipeline, now: datetime) -> Finding | None:
    """The newest load is no older than the SLA's `new_file_every_minutes`."""
    feed = pipeline.feed
    sla = feed.sla.new_file_every_minutes
    if sla is None:
        return None
    with pipeline.warehouse.transaction() as tx:
        newest = queries.newest_load(tx, feed.name)
    promise = f"the SLA is a new file at least every {duration(sla)}"
    if newest is None:
        return Finding(
            feed.name,
            CheckName.freshness,
            Status.warn,
            f"no file loaded yet; {promise} — check that files land in {feed.source.uri} "
            f"matching {feed.source.pattern!r}",
            threshold=sla,
        )
    age = _minutes(now - newest)
    if age <= sla:
        return Finding(
            feed.name,
            CheckName.freshness,
            Status.ok,
            f"newest load {duration(age)} ago; {promise}",
            observed=round(age, 2),
            threshold=sla,
        )
    return Finding(
        feed.name,
        CheckName.freshness,
        Status.fail,
        f"newest load {duration(age)} ago ({newest:%Y-%m-%d %H:%M} UTC); {promise} — check that the source "
        f"still delivers to {feed.source.uri} and that {feed.dag_id} runs ({_status_hint(feed.name)})",
        observed=round(age, 2),
        threshold=sla,
    )


def latency(pipeline: FeedPipeline, now: datetime) -> Finding | None:
    """Files loaded within the window, and files still waiting, took no longer than the SLA's
    `loaded_within_minutes` from detection to load (to now, for those still waiting)."""
    feed = pipeline.feed
    sla = feed.sla.loaded_within_minutes
    if sla is None:
        return None
    since = now - timedelta(hours=feed.monitoring.window_hours)
    with pipeline.warehouse.transaction() as tx:
        loads = queries.loads_since(tx, feed.name, since)
    waits = [(_minutes(ld.loaded_at - ld.detected_at), f"{ld.key} (loaded)") for ld in loads]
    for entry in pipeline.ledger.entries(feed.name, [FileState.detected, *IN_FLIGHT]):
        waits.append((_minutes(now - entry.detected_at), f"{entry.key} (still {entry.state.value})"))
    promise = f"the SLA is loaded within {duration(sla)} of detection"
    if not waits:
        return Finding(
            feed.name,
            CheckName.latency,
            Status.ok,
            f"no file loaded or waiting in the last {feed.monitoring.window_hours:g} h; {promise}",
            threshold=sla,
        )
    late = sorted((w for w in waits if w[0] > sla), reverse=True)
    slowest = max(w[0] for w in waits)
    if not late:
        return Finding(
            feed.name,
            CheckName.latency,
            Status.ok,
            f"slowest of {len(waits)} file(s) took {duration(slowest)}; {promise}",
            observed=round(slowest, 2),
            threshold=sla,
        )
    named = _named([f"{what} {duration(m)}" for m, what in late])
    return Finding(
        feed.name,
        CheckName.latency,
        Status.fail,
        f"{len(late)} of {len(waits)} file(s) took longer than {duration(sla)}: {named}; {promise} — look "
        f"at {feed.dag_id}'s recent runs for queued or slow tasks (warehouse pool slots, parallelism)",
        observed=round(slowest, 2),
        threshold=sla,
    )


def backlog(pipeline: FeedPipeline, now: datetime) -> Finding:
    """No complete file sits in the landing area unregistered for longer than `backlog_after_minutes`."""
    feed = pipeline.feed
    limit = feed.monitoring.backlog_after_minutes
    listed = {
        file_id_of(feed.name, obj.key, obj.identity, obj.size): obj
        for obj in pipeline.source.list(feed.source.pattern)
    }
    with pipeline.warehouse.transaction() as tx:
        known = queries.registered(tx, listed)
    waiting = [obj for fid, obj in listed.items() if fid not in known]
    cutoff = now.timestamp() - limit * 60
    old = sorted((obj for obj in waiting if obj.mtime < cutoff), key=lambda o: o.mtime)
    if not old:
        young = f", {len(waiting)} newer one(s) not yet registered" if waiting else ""
        return Finding(
            feed.name,
            CheckName.backlog,
            Status.ok,
            f"{len(listed)} file(s) in the landing area{young}; none unregistered for over {duration(limit)}",
            observed=0,
            threshold=limit,
        )
    oldest = (now.timestamp() - old[0].mtime) / 60
    return Finding(
        feed.name,
        CheckName.backlog,
        Status.fail,
        f"{len(old)} file(s) in {feed.source.uri} for over {duration(limit)} but not in the ledger (oldest "
        f"{duration(oldest)}): {_named([o.key for o in old])} — {feed.dag_id} is not picking them up: check "
        "that it is unpaused and its watcher or sweep runs, or trigger it by hand",
        observed=len(old),
        threshold=limit,
    )


def stuck(pipeline: FeedPipeline, now: datetime) -> Finding:
    """No file stays in a non-final ledger state (detected, transforming, …) past `stuck_after_minutes`."""
    feed = pipeline.feed
    limit = feed.monitoring.stuck_after_minutes
    waiting = pipeline.ledger.entries(feed.name, [FileState.detected, *IN_FLIGHT])
    old = [e for e in waiting if _minutes(now - e.updated_at) > limit]
    if not old:
        return Finding(
            feed.name,
            CheckName.stuck,
            Status.ok,
            f"{len(waiting)} file(s) in progress, none for over {duration(limit)}",
            observed=0,
            threshold=limit,
        )
    named = _named([f"{e.key} {e.state.value} for {duration(_minutes(now - e.updated_at))}" for e in old])
    return Finding(
        feed.name,
        CheckName.stuck,
        Status.fail,
        f"{len(old)} file(s) in a non-final state for over {duration(limit)}: {named} — the next run of "
        f"{feed.dag_id} resumes them; if none runs, trigger it and read its last run's log",
        observed=len(old),
        threshold=limit,
    )


def reconciliation(pipeline: FeedPipeline, now: datetime) -> Finding | None:
    """An append feed's table holds exactly the rows the ledger says were loaded, file by file (through
    the lineage column). Upsert and replace feeds remove rows by design: nothing to reconcile."""
    feed = pipeline.feed
    if feed.target.mode is not LoadMode.append:
        return None
    table = pipeline.warehouse.target(feed)
    with pipeline.warehouse.transaction() as tx:
        ledger = queries.loaded_rows(tx, feed.name)
        exists = queries.table_exists(tx, table)
        counted = queries.table_rows(tx, table) if exists else 0
    expected = sum(rows for _, rows in ledger.values())
    if counted == expected:
        return Finding(
            feed.name,
            CheckName.reconciliation,
            Status.ok,
            f"table {table} holds the {expected} row(s) the ledger says {len(ledger)} file(s) loaded",
            observed=counted,
            threshold=expected,
        )
    by_file: dict[str, int] = {}
    if exists:
        with pipeline.warehouse.transaction() as tx:
            by_file = queries.table_rows_by_file(tx, table)
    differences = [
        f"{key}: ledger {rows}, table {by_file.get(fid, 0)}"
        for fid, (key, rows) in sorted(ledger.items(), key=lambda item: item[1][0])
        if by_file.get(fid, 0) != rows
    ]
    strangers = sum(n for fid, n in by_file.items() if fid not in ledger)
    if strangers:
        differences.append(f"{strangers} row(s) from no loaded file")
    return Finding(
        feed.name,
        CheckName.reconciliation,
        Status.fail,
        f"table {table} holds {counted} row(s) but the ledger says {expected} were loaded"
        f"{'' if exists else ' (the table is missing)'}: {_named(differences)} — rows were changed "
        "outside feedline (deleted, inserted, or the table recreated); find out by whom before replaying",
        observed=counted,
        threshold=expected,
    )


def quarantine_rate(pipeline: FeedPipeline, now: datetime) -> Finding:
    """Of the files finished within the window, at most `max_quarantine_rate` were quarantined."""
    feed = pipeline.feed
    spec = feed.monitoring
    with pipeline.warehouse.transaction() as tx:
        counts = queries.finished_since(tx, feed.name, now - timedelta(hours=spec.window_hours))
    finished = sum(counts.values())
    quarantined = counts[FileState.quarantined]
    window = f"the last {spec.window_hours:g} h"
    limit = f"{spec.max_quarantine_rate:.0%}"
    if not finished:
        return Finding(
            feed.name,
            CheckName.quarantine_rate,
            Status.ok,
            f"no file finished in {window}",
            threshold=spec.max_quarantine_rate,
        )
    rate = quarantined / finished
    status = Status.fail if rate > spec.max_quarantine_rate else Status.ok
    text = (
        f"{quarantined} of {finished} file(s) finished in {window} were quarantined "
        f"({rate:.0%}; at most {limit})"
    )
    if status is Status.fail:
        text += (
            " — the files no longer meet the contract: read the reasons "
            f"({_status_hint(feed.name, '--state quarantined')}), fix the source or the contract, then "
            f"`feedline replay --feed {feed.name} --state quarantined`"
        )
    return Finding(
        feed.name,
        CheckName.quarantine_rate,
        status,
        text,
        observed=round(rate, 4),
        threshold=spec.max_quarantine_rate,
    )


#: The checks that read the warehouse, run only when it answers.
WAREHOUSE_CHECKS: tuple[tuple[CheckName, Check], ...] = (
    (CheckName.freshness, freshness),
    (CheckName.latency, latency),
    (CheckName.backlog, backlog),
    (CheckName.stuck, stuck),
    (CheckName.reconciliation, reconciliation),
    (CheckName.quarantine_rate, quarantine_rate),
)


def run_checks(pipeline: FeedPipeline, now: datetime) -> list[Finding]:
    """Every check of one feed, in `CheckName` order; a check that raises is a `fail` finding."""
    reachable = warehouse(pipeline, now)
    findings = [reachable]
    if reachable.problem:
        return findings
    for name, check in WAREHOUSE_CHECKS:
        try:
            found = check(pipeline, now)
        except Exception as exc:
            log.exception("monitoring check %s of feed %s could not run", name, pipeline.feed.name)
            found = Finding(
                pipeline.feed.name,
                name,
                Status.fail,
                f"the check could not run ({type(exc).__name__}: {exc}); see the monitoring task's log",
            )
        if found is not None:
            findings.append(found)
    return findings
