"""The feedline listener: task, file and DAG-run metrics from the Airflow events of feed DAGs.

Registered by the feedline plugin (`feedline.airflow.plugin`). Task events fire inside the task process
(a worker: no metadata DB, the warehouse reachable as the task reaches it); DAG-run events fire in the
scheduler, which must not wait: see `record_run` for how its sinks are written. Only
DAGs tagged `feedline` and `feed:<name>` (every DAG the factory builds) are measured. Nothing here
raises: a metrics problem is logged and the task's or run's outcome stays what it was.
"""

from __future__ import annotations

import logging
import threading
from datetime import datetime
from typing import TYPE_CHECKING, Any

from airflow.listeners import hookimpl

from feedline.metrics import emit, make_sinks, sink_names
from feedline.metrics.events import loaded, run_finished, task_finished, transformed
from feedline.metrics.model import Metric, Origin

if TYPE_CHECKING:
    from feedline.metrics.emit import Sink
    from feedline.settings import Settings

log = logging.getLogger(__name__)

DISCOVER_TASK = "ingest.discover"
TRANSFORM_TASK = "process.transform"
LOAD_TASK = "process.load"
FEED_TAG = "feed:"
#: Seconds the scheduler waits for DuckDB's lock before spooling a run's metrics instead.
RUN_LOCK_TIMEOUT = 0.25


def feed_of(dag: Any) -> str | None:
    """The feed a DAG runs, from its tags (`feedline`, `feed:<name>`); None for any other DAG."""
    tags = set(getattr(dag, "tags", None) or ())
    if "feedline" not in tags:
        return None
    return next((t.removeprefix(FEED_TAG) for t in sorted(tags) if t.startswith(FEED_TAG)), None)


def _seconds(start: datetime | None, end: datetime | None) -> float | None:
    return None if start is None or end is None else max((end - start).total_seconds(), 0.0)


def _warehouse_target(settings: Settings) -> str:
    if settings.warehouse_conn_id:
        from feedline.airflow.connections import warehouse_dsn

        return warehouse_dsn(settings.warehouse_conn_id)
    return settings.warehouse


def _sinks(settings: Settings, warehouse: Any = None, lock_timeout: float | None = None) -> list[Sink]:
    """The configured sinks, or none (with a warning) when they cannot be set up."""
    try:
        target = None
        if warehouse is None and "audit" in sink_names(settings):
            target = _warehouse_target(settings)
        return make_sinks(
            settings,
            warehouse=warehouse,
            warehouse_target=target,
            aws_conn_id=settings.aws_conn_id,
            duckdb_lock_timeout=lock_timeout,
        )
    except Exception as exc:
        log.warning(
            "feedline metrics: no sink could be set up (%s: %s); metrics dropped", type(exc).__name__, exc
        )
        return []


class TaskEvent:
    """What one finished attempt of a feed task tells: its task metrics, and a file's for per-file steps."""

    def __init__(self, ti: Any, feed: str, state: str, error: BaseException | str | None) -> None:
        self.ti, self.feed, self.state, self.error = ti, feed, state, error
        mapped = ti.map_index is not None and ti.map_index >= 0
        self.ref: dict[str, Any] = self._ref() if mapped else {}
        self.origin = Origin(
            feed=feed,
            dag_id=ti.dag_id,
            run_id=ti.run_id,
            task_id=ti.task_id,
            map_index=ti.map_index if mapped else None,
            file_id=self.ref.get("file_id"),
            ts=ti.end_date or ti.start_date,
        )

    def _ref(self) -> dict[str, Any]:
        """The file a mapped task handled: map index i is the discover task's i-th ref."""
        refs = self.ti.xcom_pull(task_ids=DISCOVER_TASK, key="return_value", map_indexes=-1)
        index = int(self.ti.map_index)
        return dict(refs[index]) if isinstance(refs, list) and index < len(refs) else {}

    def metrics(self) -> list[Metric]:
        ti = self.ti
        final = self.state != "up_for_retry"
        metrics = task_finished(
            self.origin,
            self.state,
            _seconds(ti.start_date, ti.end_date),
            retries=max(int(ti.try_number) - 1, 0) if final else None,
            key=self.ref.get("key") or getattr(ti, "rendered_map_index", None),
            log=None if self.state == "success" else ti.log_url,
            error=None if self.error is None else str(self.error),
        )
        if self.state == "success" and self.ti.task_id == TRANSFORM_TASK and self.ref:
            metrics += transformed(self.origin, self._result(), self.ref.get("size"))
        return metrics

    def _result(self) -> dict[str, Any]:
        value = self.ti.xcom_pull(task_ids=self.ti.task_id, key="return_value", map_indexes=self.ti.map_index)
        return dict(value) if isinstance(value, dict) else {}

    def load_metrics(self, warehouse: Any) -> list[Metric]:
        """A successful load's file metrics; its latency needs the ledger's detected/loaded times."""
        from feedline.ledger import Ledger

        result = self._result()
        if result.get("already_loaded") or not self.ref:
            return []
        entry = None
        try:
            entry = Ledger(warehouse).get(self.ref["file_id"])
        except Exception as exc:  # e.g. DuckDB's lock held past the short wait: the rest still counts
            log.warning(
                "feedline metrics: no latency for %s, the ledger was not readable (%s)", self.ref["key"], exc
            )
        return loaded(
            self.origin,
            int(result.get("rows_loaded") or 0),
            result.get("seconds", _seconds(self.ti.start_date, self.ti.end_date)),
            landed_at=None if entry is None else entry.detected_at,
            loaded_at=None if entry is None else entry.loaded_at,
        )


def record_task(ti: Any, state: str, error: BaseException | str | None = None) -> None:
    """Record one finished attempt of a feed DAG's task (in the task process)."""
    from feedline.settings import Settings

    feed = feed_of(getattr(ti.task, "dag", None))
    if feed is None:
        return
    event = TaskEvent(ti, feed, state, error)
    metrics = event.metrics()
    settings = Settings.from_env()
    warehouse = None
    if state == "success" and ti.task_id == LOAD_TASK:
        from feedline.metrics.emit import lock_timeout
        from feedline.warehouse import connect_warehouse

        warehouse = connect_warehouse(_warehouse_target(settings), lock_timeout=lock_timeout())
        metrics += event.load_metrics(warehouse)
    emit(metrics, _sinks(settings, warehouse))


def record_run(dag_run: Any, state: str) -> threading.Thread | None:
    """Record a finished feed DAG run (in the scheduler, or the process running `dag.test()`).

    A DuckDB warehouse is written before returning, waiting at most `RUN_LOCK_TIMEOUT` for its lock
    (then the batch is spooled): the process that ran the DAG may open the same file right after, and
    DuckDB refuses a connection of another configuration while one is open in the process. Sinks
    across the network (a server warehouse, CloudWatch, StatsD) are written from a thread, so that
    the scheduler never waits on them; the thread is returned.
    """
    from sqlalchemy.orm import object_session

    from feedline.settings import Settings

    feed = feed_of(getattr(dag_run, "dag", None))
    if feed is None:
        return None
    session = object_session(dag_run)
    tis = dag_run.get_task_instances(session=session) if session else dag_run.get_task_instances()
    origin = Origin(feed=feed, dag_id=dag_run.dag_id, run_id=dag_run.run_id, ts=dag_run.end_date)
    metrics = run_finished(
        origin,
        state,
        _seconds(dag_run.start_date, dag_run.end_date),
        retries=sum(max(int(ti.try_number or 0) - 1, 0) for ti in tis),
        failed_tasks=sum(1 for ti in tis if ti.state == "failed"),
    )
    sinks = _sinks(Settings.from_env(), lock_timeout=RUN_LOCK_TIMEOUT)
    local = [s for s in sinks if getattr(s, "spool", None) is not None]
    emit(metrics, local)
    remote = [s for s in sinks if s not in local]
    if not remote:
        return None
    thread = threading.Thread(target=emit, args=(metrics, remote), name="feedline-metrics", daemon=True)
    thread.start()
    return thread


def _quietly(what: str, fn: Any, *args: Any) -> None:
    try:
        fn(*args)
    except Exception:
        log.warning("feedline metrics: recording %s failed; the outcome is unaffected", what, exc_info=True)


class FeedlineListener:
    """The hooks Airflow calls; each records metrics and swallows its own errors."""

    @hookimpl
    def on_task_instance_success(self, previous_state: Any, task_instance: Any) -> None:
        _quietly(f"task {task_instance.task_id}", record_task, task_instance, "success")

    @hookimpl
    def on_task_instance_failed(self, previous_state: Any, task_instance: Any, error: Any) -> None:
        state = getattr(task_instance.state, "value", task_instance.state) or "failed"
        _quietly(f"task {task_instance.task_id}", record_task, task_instance, str(state), error)

    @hookimpl
    def on_dag_run_success(self, dag_run: Any, msg: str) -> None:
        _quietly(f"run {dag_run.run_id}", record_run, dag_run, "success")

    @hookimpl
    def on_dag_run_failed(self, dag_run: Any, msg: str) -> None:
        _quietly(f"run {dag_run.run_id}", record_run, dag_run, "failed")


listener = FeedlineListener()
