"""The metrics of each event feedline measures — a task attempt, a transform, a load, a DAG run.

Pure functions from plain values to `Metric`s, so the Airflow listener only gathers the values and
every other caller (a monitoring DAG, `feedline run`) records the same names the same way.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from feedline.metrics.model import Metric, Origin

_MAX_ERROR = 500


def task_finished(
    origin: Origin,
    state: str,
    seconds: float | None,
    *,
    retries: int | None = None,
    key: str | None = None,
    log: str | None = None,
    error: str | None = None,
) -> list[Metric]:
    """One attempt of a task ended in `state`; `retries` only for final attempts (not up_for_retry)."""
    dims: dict[str, Any] = {"Task": origin.task_id, "State": state, "key": key, "log": log}
    if error:
        dims["error"] = first_line(error)
    metrics = [origin.metric("task.finished", 1, **dims)]
    if seconds is not None:
        metrics.append(origin.metric("task.duration", seconds, Task=origin.task_id, State=state))
    if retries is not None:
        metrics.append(origin.metric("task.retries", retries, Task=origin.task_id, State=state))
    return metrics


def transformed(origin: Origin, result: Mapping[str, Any], size: int | None) -> list[Metric]:
    """What a transform produced: the file's bytes, its row accounting and the transform's own time."""
    metrics = [] if size is None else [origin.metric("file.bytes", size)]
    for name, field in (
        ("file.rows_in", "rows_in"),
        ("file.rows_rejected", "rows_rejected"),
        ("file.duplicates", "duplicates_dropped"),
        ("file.transform_seconds", "seconds"),
    ):
        if result.get(field) is not None:
            metrics.append(origin.metric(name, float(result[field])))
    return metrics


def loaded(
    origin: Origin,
    rows_loaded: int,
    seconds: float | None,
    *,
    landed_at: datetime | None,
    loaded_at: datetime | None,
) -> list[Metric]:
    """What a load published, how long it took and the file's end-to-end latency (landed → loaded)."""
    metrics = [origin.metric("file.rows_loaded", rows_loaded)]
    if seconds is not None:
        metrics.append(origin.metric("file.load_seconds", seconds))
    if landed_at is not None and loaded_at is not None:
        latency = max((loaded_at - landed_at).total_seconds(), 0.0)
        metrics.append(origin.metric("file.latency_seconds", latency))
    return metrics


def run_finished(
    origin: Origin, state: str, seconds: float | None, *, retries: int, failed_tasks: int
) -> list[Metric]:
    """A DAG run ended in `state`."""
    metrics = [
        origin.metric("run.finished", 1, State=state),
        origin.metric("run.retries", retries, State=state),
        origin.metric("run.failed_tasks", failed_tasks, State=state),
    ]
    if seconds is not None:
        metrics.append(origin.metric("run.duration", seconds, State=state))
    return metrics


def first_line(text: str) -> str:
    line = text.strip().splitlines()[0] if text.strip() else ""
    return line if len(line) <= _MAX_ERROR else line[: _MAX_ERROR - 1] + "…"
