"""Generate one Airflow DAG per feed contract: ingest → process (mapped per file) → post_process, cleanup.

With FEEDLINE_INLINE_MAX_BYTES set, ingest loads the small files itself and maps only the others.

Parsing stays cheap: this module imports only the contract and the Airflow SDK; task bodies import
the pipeline (polars, duckdb, boto3) when they run.
"""

from __future__ import annotations

import os
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from airflow.sdk import (
    DAG,
    Asset,
    AssetOrTimeSchedule,
    AssetWatcher,
    CronTriggerTimetable,
    TaskGroup,
    TriggerRule,
    task,
    task_group,
)

from feedline.airflow.monitoring_dag import deadline_alerts
from feedline.airflow.notify import on_failure_callbacks, on_success_callbacks
from feedline.contract import Feed, FeedSet, Trigger, load_feeds
from feedline.errors import ContractError
from feedline.settings import Settings

#: Pool serializing warehouse writes (DuckDB admits one writing process); override with FEEDLINE_POOL.
DEFAULT_POOL = "feedline_warehouse"
START = datetime(2024, 1, 1)
#: How long a sensor-mode run of a feed without a sweep waits for a file before it sweeps anyway.
SENSOR_WAIT = timedelta(minutes=30)


def warehouse_pool() -> str:
    return os.environ.get("FEEDLINE_POOL", DEFAULT_POOL) or "default_pool"


#: Files up to this many bytes are transformed and loaded by the run's discover task itself (unset or 0:
#: never). `feedline.stack` (`make run`) sets it: see docs/benchmarks.md, Latency.
INLINE_ENV = "FEEDLINE_INLINE_MAX_BYTES"
#: How long one discover task keeps loading files inline before it leaves the rest to per-file tasks
#: (which load a small file several times slower: this bounds the task, not the burst's time).
INLINE_BUDGET_SECONDS = 600.0
#: How long the inline loop keeps the warehouse open between two releases (DuckDB: its write lock), and
#: the pause after each release: DuckDB lets no other process open the file meanwhile, and without a pause
#: the loop took the lock straight back, so a reader polling every 0.25 s saw nothing of a 1,000-file
#: burst until its end.
INLINE_SESSION_SECONDS = 2.0
INLINE_SESSION_GAP = 0.3


def inline_max_bytes() -> int:
    """The inline size limit. For a small file, the work is tens of milliseconds while each task process
    costs about a CPU-second and a scheduler round trip: two per-file tasks triple its latency."""
    raw = os.environ.get(INLINE_ENV, "").strip()
    try:
        return max(int(raw or 0), 0)
    except ValueError:
        raise ContractError(
            f"{INLINE_ENV}={raw!r} is not a number of bytes; set it to e.g. 8000000, or 0 to load every "
            "file in tasks of its own"
        ) from None


def _default_args(feed: Feed) -> dict[str, Any]:
    """Every task's retry policy and, if the feed wants them, its failure notifications.

    Failures notify from task callbacks, not the DAG's: in Airflow 3.3 a task's `on_failure_callback`
    runs in the task process once its last retry failed (or in the dag-processor if that process died),
    where the exception, the file key and that try's log URL are at hand; a DAG failure callback runs
    in the dag-processor knowing only the run's last failed task — here always `cleanup`.
    """
    retries = feed.retries
    args: dict[str, Any] = {
        "owner": "feedline",
        "retries": retries.retries,
        "retry_delay": timedelta(seconds=retries.delay_seconds),
        "retry_exponential_backoff": 2.0 if retries.exponential_backoff else 0,
        "max_retry_delay": timedelta(seconds=retries.max_delay_seconds),
    }
    if callbacks := on_failure_callbacks(feed):
        args["on_failure_callback"] = callbacks
    return args


def _doc(feed: Feed) -> str:
    rows = "\n".join(f"| `{c.name}` | {c.type} | {'yes' if c.nullable else 'no'} |" for c in feed.columns)
    keys = ", ".join(feed.primary_key) or "—"
    return (
        f"### feed `{feed.name}`\n\n{feed.description}\n\n"
        f"Source `{feed.source.uri}` (`{feed.source.pattern}`) → `{feed.target.table}` "
        f"({feed.target.mode.value}), primary key `{keys}`.\n\n"
        f"| column | type | nullable |\n|---|---|---|\n{rows}\n"
    )


def _landing_asset(feed: Feed, settings: Settings) -> Asset | None:
    """The asset whose events start the feed's runs (watcher mode), None in sensor mode."""
    if feed.schedule.trigger is Trigger.sensor:
        return None
    return _s3_events_asset(settings) if feed.source.is_s3 else _folder_asset(feed, settings)


def _schedule(feed: Feed, asset: Asset | None) -> Any:
    """Sensor mode: a run every minute (one at a time, its sensor waiting up to a sweep period).
    Watcher mode: the landing asset's events, or-ed with the cron sweep."""
    if asset is None:
        return CronTriggerTimetable("* * * * *", timezone="UTC")
    sweep = CronTriggerTimetable(feed.schedule.sweep, timezone="UTC") if feed.schedule.sweep else None
    return AssetOrTimeSchedule(timetable=sweep, assets=asset) if sweep else asset


def _folder_asset(feed: Feed, settings: Settings) -> Asset:
    from feedline.airflow.triggers import LocalFolderTrigger

    location = settings.source_location(feed.source.uri)
    trigger = LocalFolderTrigger(
        directory=location,
        pattern=feed.source.pattern,
        poll_seconds=feed.schedule.poll_seconds,
        settle_seconds=feed.source.settle_seconds,
    )
    watcher = AssetWatcher(name=f"feedline_{feed.name}_watcher", trigger=trigger)
    return Asset(
        name=f"feedline_{feed.name}_landing",
        uri=Path(location).as_uri(),
        group="feedline",
        watchers=[watcher],
    )


def _s3_events_asset(settings: Settings) -> Asset:
    """One asset for the raw bucket's S3 → SQS events, shared by every S3 feed.

    Each event wakes every S3 feed; each sweeps only its own prefix, so a consumed message can never
    hide a file from the feed it belongs to. Without a queue the feeds rely on their sweep.
    """
    watchers = []
    if settings.sqs_queue:
        from airflow.providers.common.messaging.triggers.msg_queue import MessageQueueTrigger

        trigger = MessageQueueTrigger(
            scheme="sqs",
            sqs_queue=settings.sqs_queue,
            aws_conn_id=settings.aws_conn_id,
            waiter_delay=1,
            wait_time_seconds=10,
            max_messages=10,
        )
        watchers.append(AssetWatcher(name="feedline_s3_events_watcher", trigger=trigger))
    return Asset(
        name="feedline_s3_events", uri="sqs://feedline/s3-events", group="feedline", watchers=watchers
    )


def sensor_wait(feed: Feed) -> float:
    """Seconds a sensor-mode run waits for a file before it sweeps anyway: one period of the feed's
    sweep cron, else `SENSOR_WAIT`. Waiting deferred costs no worker slot, while each timeout costs a
    resumed sensor and a sweep (discover, report, archive): six task starts per cycle, so a 55 s wait
    meant six a minute for a feed where nothing lands (docs/benchmarks.md, Sensing)."""
    if not feed.schedule.sweep:
        return SENSOR_WAIT.total_seconds()
    from croniter import croniter

    fires = croniter(feed.schedule.sweep, START)
    first: datetime = fires.get_next(datetime)
    second: datetime = fires.get_next(datetime)
    return max((second - first).total_seconds(), 60.0)


def _sensor(feed: Feed, settings: Settings) -> Any:
    """A deferrable sensor waiting for the feed's files: no worker slot held while it waits."""
    common: dict[str, Any] = {
        "task_id": "wait_for_file",
        "deferrable": True,
        "poke_interval": feed.schedule.poll_seconds,
        "timeout": sensor_wait(feed),
        "soft_fail": True,
        "retries": 0,
    }
    location = settings.source_location(feed.source.uri)
    if feed.source.is_s3:
        from airflow.providers.amazon.aws.sensors.s3 import S3KeySensor

        return S3KeySensor(
            bucket_key=f"{location.rstrip('/')}/{feed.source.pattern}",
            wildcard_match=True,
            aws_conn_id=settings.aws_conn_id,
            **common,
        )
    from airflow.providers.standard.sensors.filesystem import FileSensor

    return FileSensor(filepath=os.path.join(location, feed.source.pattern), fs_conn_id="fs_default", **common)


def _final_attempt() -> bool:
    from airflow.sdk import get_current_context

    ti = get_current_context()["ti"]
    return int(ti.try_number) > int(getattr(ti, "max_tries", 0))


def _guard(feed: Feed, settings: Settings, ref: dict[str, Any], step: str, fn: Any) -> Any:
    """Run one per-file step: terminal errors quarantine and fail fast; others retry, then mark `failed`.

    The message recorded in the ledger and raised names the feed, the file, what went wrong and what
    to do (`feedline.errors.failure_message`); the original exception stays chained.
    """
    from airflow.sdk import get_current_context
    from airflow.sdk.exceptions import AirflowFailException

    from feedline.airflow.connections import task_pipeline
    from feedline.airflow.notify import notify_quarantine
    from feedline.errors import TerminalError, classify, failure_message

    get_current_context()["file_key"] = ref["key"]  # type: ignore[typeddict-unknown-key]  # map index label
    try:
        return fn()
    except Exception as exc:
        message = failure_message(feed.name, ref["key"], step, exc)
        if isinstance(classify(exc), TerminalError):
            task_pipeline(feed, settings).quarantine(ref, message)
            notify_quarantine(feed, ref, message)
            raise AirflowFailException(message) from exc
        if _final_attempt():
            task_pipeline(feed, settings).fail(ref, message)
        raise


def _load_inline(
    feed: Feed, settings: Settings, pipeline: Any, refs: list[dict[str, Any]]
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Transform and load the small files of `refs` here, one after the other, within a time budget;
    return (loaded, left to the per-file tasks).

    Every ledger state is recorded as in the per-file tasks, and the load and its `loaded` mark still
    commit together. A file that raises anything is left untouched by any decision: its own tasks take
    it over and retry, quarantine, notify and fail the run exactly as for any other file.
    """
    limit = inline_max_bytes()
    if not limit:
        return [], refs
    deadline = time.monotonic() + INLINE_BUDGET_SECONDS
    done: list[dict[str, Any]] = []
    left: list[dict[str, Any]] = [ref for ref in refs if int(ref["size"]) > limit]
    small = [ref for ref in refs if int(ref["size"]) <= limit]
    while small and time.monotonic() < deadline:
        # One warehouse session for a few seconds of files, then a release so others get the lock.
        release_at = time.monotonic() + INLINE_SESSION_SECONDS
        with pipeline.warehouse.session():
            while small and time.monotonic() < min(release_at, deadline):
                ref = small.pop(0)
                try:
                    result = pipeline.transform(ref)
                    loaded = pipeline.load(ref, result)
                except Exception as exc:
                    why = f"{type(exc).__name__}: {exc}"
                    print(f"{ref['key']}: not loaded here ({why}); its own tasks take it over")
                    left.append(ref)
                    continue
                done.append({"ref": ref, "result": dict(result), "loaded": dict(loaded)})
        if small and pipeline.warehouse.session_excludes_others:
            time.sleep(INLINE_SESSION_GAP)  # let processes waiting for the file in
    left += small
    _record_inline(feed, settings, pipeline, done)
    return [d["ref"] for d in done], left


def _record_inline(feed: Feed, settings: Settings, pipeline: Any, done: list[dict[str, Any]]) -> None:
    """The lineage and file metrics the per-file tasks would have sent for the files loaded inline."""
    if not done:
        return
    from airflow.sdk import get_current_context

    from feedline.airflow import lineage
    from feedline.metrics import Origin, emit, make_sinks
    from feedline.metrics.events import loaded, transformed

    for item in done:
        lineage.emit_transform(feed, settings, item["ref"], item["result"])
        lineage.emit_load(feed, settings, item["ref"], item["result"], item["loaded"])
    try:
        ti = get_current_context()["ti"]
        metrics = []
        for item in done:
            ref, entry = item["ref"], pipeline.ledger.get(item["ref"]["file_id"])
            origin = Origin(
                feed=feed.name, dag_id=ti.dag_id, run_id=ti.run_id, task_id=ti.task_id, file_id=ref["file_id"]
            )
            metrics += transformed(origin, item["result"], ref.get("size"))
            metrics += loaded(
                origin,
                int(item["loaded"].get("rows_loaded") or 0),
                item["loaded"].get("seconds"),
                landed_at=entry.detected_at if entry else None,
                loaded_at=entry.loaded_at if entry else None,
            )
        emit(metrics, make_sinks(settings, warehouse=pipeline.warehouse, aws_conn_id=settings.aws_conn_id))
    except Exception as exc:  # metrics never fail a task
        print(f"feedline metrics: the inline files' metrics were not recorded ({type(exc).__name__}: {exc})")


def _crashed(refs: list[dict[str, Any]]) -> dict[str, str]:
    """{file_id: step} for this run's per-file tasks that ended `failed`: their ledger entry says in
    flight only if the task process died before it could record anything (map index i is refs[i])."""
    from airflow.sdk import get_current_context

    ti = get_current_context()["ti"]
    steps = {f"process.{step}": step for step in ("transform", "load")}
    states = ti.get_task_states(dag_id=ti.dag_id, task_ids=list(steps), run_ids=[ti.run_id])
    crashed: dict[str, str] = {}
    for name, state in states.get(ti.run_id, {}).items():
        task_id, _, index = name.rpartition("_")
        if state == "failed" and task_id in steps and index.isdigit() and int(index) < len(refs):
            crashed.setdefault(refs[int(index)]["file_id"], steps[task_id])
    return crashed


def build_dag(feed: Feed, settings: Settings | None = None) -> DAG:
    """The DAG `feed_<name>` for one feed."""
    settings = settings or Settings.from_env()
    pool = warehouse_pool()
    landing = _landing_asset(feed, settings)

    with DAG(
        dag_id=feed.dag_id,
        description=feed.description or f"feedline feed {feed.name}",
        schedule=_schedule(feed, landing),
        start_date=START,
        catchup=False,
        max_active_runs=1,
        default_args=_default_args(feed),
        # One message per successful run, so a DAG callback (run by the dag-processor), not a task one.
        on_success_callback=on_success_callbacks(feed) or None,
        deadline=deadline_alerts(feed) or None,  # sla.loaded_within_minutes
        tags=["feedline", f"feed:{feed.name}", feed.schedule.trigger.value],
        doc_md=_doc(feed),
    ) as dag:
        with TaskGroup("ingest") as ingest:
            wait = _sensor(feed, settings) if feed.schedule.trigger is Trigger.sensor else None

            @task(task_id="discover", pool=pool, trigger_rule=TriggerRule.NONE_FAILED)
            def discover() -> list[dict[str, Any]]:
                """Register new complete files in the ledger, load the small ones right here (when
                FEEDLINE_INLINE_MAX_BYTES is set) and return the other unfinished files of the feed."""
                from airflow.sdk import get_current_context

                from feedline.airflow.connections import task_pipeline

                pipeline = task_pipeline(feed, settings)
                found = pipeline.discover()
                known = f"{found.new} new, {found.redelivered} already known"
                print(f"{len(found.refs)} file(s) to process ({known})")
                ti = get_current_context()["ti"]
                if len(found.refs) >= feed.max_files_per_run:
                    limit = feed.max_files_per_run
                    print(f"max_files_per_run ({limit}) reached: the run will ask for another")
                    ti.xcom_push(key="saturated", value=True)
                inline, left = _load_inline(feed, settings, pipeline, found.refs)
                if inline:
                    print(f"{len(inline)} loaded here, {len(left)} left to per-file tasks")
                    ti.xcom_push(key="inline", value=inline)
                return left

            refs = discover()
            if wait is not None:
                wait >> refs

        @task(task_id="transform", map_index_template="{{ file_key }}")
        def transform(ref: dict[str, Any]) -> dict[str, Any]:
            """Clean one file to Parquet; bad rows go to quarantine with their reason."""
            from feedline.airflow import lineage
            from feedline.airflow.connections import task_pipeline

            result = dict(
                _guard(feed, settings, ref, "transform", lambda: task_pipeline(feed, settings).transform(ref))
            )
            lineage.emit_transform(feed, settings, ref, result)
            return result

        @task(task_id="load", pool=pool, map_index_template="{{ file_key }}")
        def load(ref: dict[str, Any], result: dict[str, Any]) -> dict[str, Any]:
            """Load one file and mark it loaded in the same transaction."""
            from feedline.airflow import lineage
            from feedline.airflow.connections import task_pipeline

            loaded = dict(
                _guard(feed, settings, ref, "load", lambda: task_pipeline(feed, settings).load(ref, result))
            )
            lineage.emit_load(feed, settings, ref, result, loaded)
            return loaded

        @task_group(group_id="process")
        def process(ref: dict[str, Any]) -> None:
            load(ref, transform(ref))

        processed = process.expand(ref=refs)

        with TaskGroup("post_process") as post:

            @task(task_id="report", pool=pool, trigger_rule=TriggerRule.ALL_DONE)
            def report(refs: list[dict[str, Any]]) -> dict[str, Any]:
                """The fate of every file of this run (loaded by discover or by its own tasks), from the
                ledger."""
                from airflow.sdk import get_current_context

                from feedline.airflow.connections import task_pipeline

                inline = get_current_context()["ti"].xcom_pull(task_ids="ingest.discover", key="inline")
                summary = task_pipeline(feed, settings).summarize([*(inline or []), *refs])
                for key, fate in summary["files"].items():
                    print(
                        f"{key}: {fate['state']} rows_loaded={fate['rows_loaded']} "
                        f"rows_rejected={fate['rows_rejected']} {fate['error'] or ''}".rstrip()
                    )
                return summary

            @task(task_id="archive", pool=pool, trigger_rule=TriggerRule.ALL_DONE)
            def archive() -> dict[str, int]:
                """Move loaded raw files from landing to the archive area."""
                from feedline.airflow.connections import task_pipeline

                return task_pipeline(feed, settings).archive()

            done = report(refs) >> archive()

            if landing is not None:

                @task(task_id="next_run", outlets=[landing], trigger_rule=TriggerRule.ALL_DONE)
                def next_run() -> None:
                    """When this run took as many files as it may (max_files_per_run), emit an event of the
                    landing asset so another run takes the rest now, not at the next sweep; else skip (a
                    skipped task emits nothing). Only a full run asks, so this cannot loop."""
                    from airflow.sdk import get_current_context
                    from airflow.sdk.exceptions import AirflowSkipException

                    ti = get_current_context()["ti"]
                    if not ti.xcom_pull(task_ids="ingest.discover", key="saturated"):
                        raise AirflowSkipException("this run took every unfinished file")
                    print(f"asking for another run of {feed.dag_id}: more files wait in the ledger")

                done >> next_run()

        @task(task_id="cleanup", pool=pool, trigger_rule=TriggerRule.ONE_FAILED, retries=1)
        def cleanup(refs: list[dict[str, Any]]) -> None:
            """After a failure: settle failed files, drop staging and partial outputs, then fail the run
            with what went wrong (the failed tasks keep their own errors and logs)."""
            from airflow.sdk.exceptions import AirflowFailException

            from feedline.airflow.connections import task_pipeline

            problems = task_pipeline(feed, settings).cleanup(refs, _crashed(refs))
            detail = (
                "; ".join(f"{key}: {err}" for key, err in problems.items()) or "see the failed task's log"
            )
            raise AirflowFailException(f"feed {feed.name}: {len(problems)} file(s) did not load — {detail}")

        processed >> post
        processed >> cleanup(refs)
        ingest >> processed
    return dag


def build_dags(feeds_dir: str | Path | None = None, settings: Settings | None = None) -> dict[str, DAG]:
    """A DAG for every valid feed in `feeds_dir`; invalid feeds are skipped (see `contract_errors`)."""
    settings = settings or Settings.from_env()
    feed_set = load_feeds(feeds_dir or settings.feeds_dir)
    return {feed.dag_id: build_dag(feed, settings) for feed in feed_set.feeds}


def raise_contract_errors(feeds_dir: str | Path | None = None) -> FeedSet:
    """Raise one import error listing every invalid feed file, each with its field and fix."""
    settings = Settings.from_env()
    feed_set = load_feeds(feeds_dir or settings.feeds_dir)
    if feed_set.errors:
        raise ContractError("\n".join(str(e) for e in feed_set.errors.values()))
    return feed_set
