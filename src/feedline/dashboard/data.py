"""The numbers behind the dashboard, per feed, read from the ledger and the metrics table.

Latency is end to end: a file's `detected_at` (when a run registered it in the ledger; the ledger keeps
no landing mtime) to its `loaded_at` (when its rows became queryable: the load and the mark commit
together). Percentiles interpolate linearly between ranks. Everything is computed in Python from
a few plain SELECTs, so the same code serves DuckDB, PostgreSQL and Redshift.
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from feedline.ledger import AUDIT_SCHEMA, LEDGER_TABLE, FileState
from feedline.metrics.audit import METRICS_REF, METRICS_TABLE
from feedline.warehouse.dialect import TableRef

if TYPE_CHECKING:
    from feedline.warehouse.base import Tx, Warehouse

FAILURES_SHOWN = 10
_LEDGER = TableRef(AUDIT_SCHEMA, LEDGER_TABLE)
_FAILED = (FileState.quarantined.value, FileState.failed.value)
_TERMINAL = (FileState.loaded.value, *_FAILED)


def percentile(values: Sequence[float], q: float) -> float | None:
    """The q-th percentile (0 to 100) with linear interpolation between ranks; None without values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low, high = math.floor(rank), math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def _hour(ts: datetime) -> datetime:
    return ts.replace(minute=0, second=0, microsecond=0)


def _naive(ts: datetime) -> datetime:
    return ts.astimezone(UTC).replace(tzinfo=None) if ts.tzinfo else ts


@dataclass
class FeedNumbers:
    """One feed's figures over the window (`states` and `failures` are all-time)."""

    feed: str
    hours: list[datetime]
    states: dict[str, int] = field(default_factory=dict)
    latencies: dict[datetime, list[float]] = field(default_factory=lambda: defaultdict(list))
    rows: dict[datetime, int] = field(default_factory=lambda: defaultdict(int))
    files: dict[datetime, int] = field(default_factory=lambda: defaultdict(int))
    rows_rejected: int = 0
    finished: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    failures: list[dict[str, Any]] = field(default_factory=list)
    step_seconds: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))

    def as_dict(self) -> dict[str, Any]:
        every = [v for h in self.hours for v in self.latencies.get(h, [])]
        done = sum(self.finished.values())
        quarantined = self.finished.get(FileState.quarantined.value, 0)
        return {
            "feed": self.feed,
            "dag_id": f"feed_{self.feed}",
            "states": {s.value: self.states.get(s.value, 0) for s in FileState},
            "totals": {
                "files_loaded": sum(self.files.values()),
                "rows_loaded": sum(self.rows.values()),
                "rows_rejected": self.rows_rejected,
                "files_finished": done,
                "files_quarantined": quarantined,
                "files_failed": self.finished.get(FileState.failed.value, 0),
                "quarantine_rate": quarantined / done if done else None,
                "latency_p50": percentile(every, 50),
                "latency_p95": percentile(every, 95),
                "transform_p50": percentile(self.step_seconds["file.transform_seconds"], 50),
                "load_p50": percentile(self.step_seconds["file.load_seconds"], 50),
            },
            "hourly": [
                {
                    "hour": h.isoformat() + "Z",
                    "files": self.files.get(h, 0),
                    "rows_loaded": self.rows.get(h, 0),
                    "latency_p50": percentile(self.latencies.get(h, []), 50),
                    "latency_p95": percentile(self.latencies.get(h, []), 95),
                }
                for h in self.hours
            ],
            "failures": self.failures,
        }


def dashboard_data(
    warehouse: Warehouse,
    *,
    hours: int = 24,
    now: datetime | None = None,
    known_feeds: Iterable[str] = (),
    allowed: Callable[[str], bool] = lambda feed: True,
) -> dict[str, Any]:
    """Every feed's figures for the last `hours` hours (hourly buckets, the current hour last): the
    feeds of the ledger plus `known_feeds` (declared, maybe without files yet), those `allowed` only."""
    now = _naive(now or datetime.now(UTC))
    last = _hour(now)
    buckets = [last - timedelta(hours=n) for n in range(hours - 1, -1, -1)]
    since = buckets[0]
    feeds: dict[str, FeedNumbers] = {
        name: FeedNumbers(name, buckets) for name in sorted(set(known_feeds)) if allowed(name)
    }

    def numbers(feed: str) -> FeedNumbers | None:
        if feed not in feeds and allowed(feed):
            feeds[feed] = FeedNumbers(feed, buckets)
        return feeds.get(feed)

    with warehouse.transaction() as tx:
        tables = _audit_tables(tx)
        if LEDGER_TABLE in tables:
            _read_ledger(tx, since, numbers)
        if METRICS_TABLE in tables:
            _read_metrics(tx, since, feeds)
    return {
        "generated_at": now.isoformat() + "Z",
        "window_hours": hours,
        "feeds": [feeds[name].as_dict() for name in sorted(feeds)],
    }


def _audit_tables(tx: Tx) -> set[str]:
    tx.execute(tx.dialect.list_tables(), [AUDIT_SCHEMA])
    return {str(row[0]) for row in tx.fetchall()}


def _read_ledger(tx: Tx, since: datetime, numbers: Callable[[str], FeedNumbers | None]) -> None:
    d = tx.dialect
    q, p, table = d.quote, d.param, d.table(_LEDGER)
    tx.execute(f"SELECT {q('feed')}, {q('state')}, COUNT(*) FROM {table} GROUP BY {q('feed')}, {q('state')}")
    for feed, state, count in tx.fetchall():
        if (n := numbers(str(feed))) is not None:
            n.states[str(state)] = int(count)
    fields = ["feed", "state", "rows_loaded", "rows_rejected", "detected_at", "loaded_at"]
    tx.execute(
        f"SELECT {d.columns(fields)} FROM {table} WHERE {q('updated_at')} >= {p} "
        f"AND {q('state')} IN ({d.params(len(_TERMINAL))})",
        [since, *_TERMINAL],
    )
    for feed, state, rows, rejected, detected, loaded_at in tx.fetchall():
        n = numbers(str(feed))
        if n is None:
            continue
        n.finished[str(state)] += 1
        n.rows_rejected += int(rejected or 0)
        if state == FileState.loaded.value and loaded_at is not None and loaded_at >= since:
            hour = _hour(loaded_at)
            n.files[hour] += 1
            n.rows[hour] += int(rows or 0)
            n.latencies[hour].append(max((loaded_at - detected).total_seconds(), 0.0))
    fields = ["feed", "file_id", "key", "version", "state", "error", "updated_at"]
    tx.execute(
        f"SELECT {d.columns(fields)} FROM {table} WHERE {q('state')} IN ({d.params(len(_FAILED))}) "
        f"ORDER BY {q('updated_at')} DESC LIMIT 500",
        list(_FAILED),
    )
    for feed, file_id, key, version, state, error, updated in tx.fetchall():
        n = numbers(str(feed))
        if n is not None and len(n.failures) < FAILURES_SHOWN:
            n.failures.append(
                {
                    "file_id": file_id,
                    "key": key,
                    "version": version,
                    "state": state,
                    "error": error,
                    "at": updated.isoformat() + "Z",
                    "log": None,
                }
            )


def _read_metrics(tx: Tx, since: datetime, feeds: dict[str, FeedNumbers]) -> None:
    """Step timings of the window, and the log of the last failed attempt of each failed file."""
    d = tx.dialect
    q, p, table = d.quote, d.param, d.table(METRICS_REF)
    steps = ("file.transform_seconds", "file.load_seconds")
    tx.execute(
        f"SELECT {d.columns(['feed', 'name', 'value'])} FROM {table} WHERE {q('ts')} >= {p} "
        f"AND {q('name')} IN ({d.params(len(steps))})",
        [since, *steps],
    )
    for feed, name, value in tx.fetchall():
        if str(feed) in feeds:
            feeds[str(feed)].step_seconds[str(name)].append(float(value))
    wanted = {f["file_id"]: f for n in feeds.values() for f in n.failures}
    if not wanted:
        return
    ids = sorted(wanted)
    tx.execute(
        f"SELECT {d.columns(['file_id', 'dimensions'])} FROM {table} WHERE {q('name')} = {p} "
        f"AND {q('file_id')} IN ({d.params(len(ids))}) ORDER BY {q('ts')} DESC",
        ["task.finished", *ids],
    )
    for file_id, dimensions in tx.fetchall():
        failure = wanted[str(file_id)]
        if failure["log"] is None:
            failure["log"] = _log_of(dimensions)


def _log_of(dimensions: str | None) -> str | None:
    try:
        dims = json.loads(dimensions or "{}")
    except ValueError:
        return None
    return dims.get("log") if dims.get("State") in ("failed", "up_for_retry") else None
