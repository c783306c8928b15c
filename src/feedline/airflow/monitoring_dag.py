"""The monitoring DAG `feedline_monitoring`, and the deadline alert each feed DAG carries for its SLA.

Shape: `feeds` lists the valid feeds when the run starts → `check` is mapped over them, one task per
feed running every check of that feed → `summary` says "all feeds healthy" or lists the problems. A
mapped task per feed, not a task per check kind: a feed's checks share its pipeline (source listing,
ledger, warehouse connection) and its alert is one message for all its problems; one feed whose source
or warehouse breaks fails only its own task, which is retried on its own and named by its map index;
and feeds added since the DAG was parsed are checked on the next run, with no re-parse.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any, cast

from airflow.sdk import DAG, CronTriggerTimetable, TriggerRule, task
from airflow.sdk.definitions.callback import SyncCallback
from airflow.sdk.definitions.deadline import DeadlineAlert, DeadlineReference

from feedline.contract import Feed
from feedline.settings import Settings

if TYPE_CHECKING:
    from airflow.sdk import Context

log = logging.getLogger(__name__)

DAG_ID = "feedline_monitoring"
SCHEDULE = "0 * * * *"
HEALTHY = "all feeds healthy"
START = datetime(2024, 1, 1)


def _doc() -> str:
    return (
        "### feedline monitoring\n\nEvery hour (or triggered by hand), for every feed: freshness of the "
        "newest load and load latency against the feed's `sla`, landing backlog, stuck ledger entries, "
        "row reconciliation of append feeds, quarantine rate, and whether the warehouse answers. "
        "Findings go to `feedline_audit.monitoring`; problems and recoveries to the feed's `notify` "
        "routes. See docs/monitoring.md."
    )


def build_monitoring_dag(settings: Settings | None = None) -> DAG:
    """The DAG `feedline_monitoring`: hourly, and on demand."""
    from feedline.airflow.dag_factory import warehouse_pool

    settings = settings or Settings.from_env()
    with DAG(
        dag_id=DAG_ID,
        description="feedline: freshness, backlog, stuck files, reconciliation, quarantine rate per feed",
        schedule=CronTriggerTimetable(SCHEDULE, timezone="UTC"),
        start_date=START,
        catchup=False,
        max_active_runs=1,
        default_args={"owner": "feedline", "retries": 1, "retry_delay": timedelta(minutes=2)},
        tags=["feedline", "monitoring"],
        doc_md=_doc(),
    ) as dag:

        @task(task_id="feeds")
        def feeds() -> list[str]:
            """The valid feeds now; invalid feed files are reported by the feed_contracts import error."""
            from feedline.contract import load_feeds

            feed_set = load_feeds(settings.feeds_dir)
            for path in feed_set.errors:
                log.warning("%s is invalid and is not monitored (see the DAG import errors)", path)
            return [feed.name for feed in feed_set.feeds]

        # The warehouse pool: on DuckDB the checks and their recording must not collide with loads.
        @task(task_id="check", pool=warehouse_pool(), map_index_template="{{ feed_name }}")
        def check(feed_name: str) -> dict[str, Any]:
            """Every check of one feed; alerts what is due and records the findings."""
            return check_feed(settings, feed_name)

        @task(task_id="summary", trigger_rule=TriggerRule.ALL_DONE)
        def summary(names: list[str] | None, reports: list[dict[str, Any] | None]) -> dict[str, Any]:
            """One line for the whole run; fails the run if a feed could not be checked at all."""
            return summarize(names or [], [r for r in reports if r])

        names: Any = feeds()
        summary(names, cast(Any, check.expand(feed_name=names)))
    return dag


def check_feed(settings: Settings, feed_name: str) -> dict[str, Any]:
    """Run the monitoring of one feed inside a task: alerts go through the feed's notifiers."""
    from airflow.sdk import get_current_context

    from feedline.airflow.connections import task_pipeline
    from feedline.airflow.notify import deliver, run_url
    from feedline.contract import load_feeds
    from feedline.monitoring import monitor_feed

    context = get_current_context()
    cast(dict[str, Any], context)["feed_name"] = feed_name  # the map index label
    feed = _feed(load_feeds(settings.feeds_dir).feeds, feed_name)
    report = monitor_feed(
        task_pipeline(feed, settings),
        run_id=str(context.get("run_id") or "") or None,
        send=lambda notify, message: deliver(notify, message, context),
        run_url=run_url(context),
    )
    for finding in report.findings:
        print(finding.line())
    if report.routes:
        print(f"alert sent via {', '.join(report.routes)}")
    return report.as_dict()


def _feed(feeds: list[Feed], name: str) -> Feed:
    for feed in feeds:
        if feed.name == name:
            return feed
    from airflow.sdk.exceptions import AirflowFailException

    raise AirflowFailException(
        f"feed {name!r} is no longer a valid feed in the feeds folder (removed, renamed or invalid since "
        "the run started); nothing to check"
    )


def summarize(names: list[str], reports: list[dict[str, Any]]) -> dict[str, Any]:
    """Print "all feeds healthy" or every problem; raise when a feed's check task produced nothing."""
    from airflow.sdk.exceptions import AirflowFailException

    found = [f for report in reports for f in report["findings"] if f["status"] != "ok"]
    problems = [f"{f['status'].upper()} {f['feed']}.{f['check']}: {f['message']}" for f in found]
    checked = {report["feed"] for report in reports}
    missing = [name for name in names if name not in checked]
    if problems:
        print(f"{len(problems)} problem(s) in {len({f['feed'] for f in found})} feed(s):")
        for line in problems:
            print(f"  {line}")
    elif not missing:
        print(f"{HEALTHY}: {len(checked)} feed(s) checked" if checked else "no feed to check")
    if missing:
        raise AirflowFailException(
            f"the checks of feed(s) {', '.join(missing)} did not run to the end; read their check task's log"
        )
    return {"feeds": sorted(checked), "problems": problems}


# --- the SLA as an Airflow deadline alert ----------------------------------------------------------


def deadline_alerts(feed: Feed) -> list[DeadlineAlert]:
    """A deadline alert on every run of the feed's DAG: unfinished `sla.loaded_within_minutes` after it
    was queued, the feed's routes hear of it at once (the monitoring DAG would only notice within the
    hour). Runs start within seconds of a file landing (asset events), so the run's queue time stands
    for the landing time. The callback runs in a worker through the executor (`SyncCallback`): our
    notifiers are synchronous and read Airflow connections, which the callback process can."""
    minutes = feed.sla.loaded_within_minutes
    if minutes is None:
        return []
    kwargs = {"feed": feed.name, "minutes": minutes, "notify": feed.notify.model_dump(mode="json")}
    return [
        DeadlineAlert(
            reference=DeadlineReference.DAGRUN_QUEUED_AT,
            interval=timedelta(minutes=minutes),
            callback=SyncCallback(deadline_missed, kwargs=kwargs),
            name=f"{feed.dag_id}_loaded_within",
        )
    ]


def deadline_missed(*, feed: str, minutes: float, notify: dict[str, Any], context: dict[str, Any]) -> None:
    """Deadline-alert callback: a feed run is still unfinished `minutes` after it was queued.

    Airflow calls it with the kwargs given in `deadline_alerts` and a `context` holding the run
    (`dag_run`, as the REST API shows it) and the deadline. Never raises: a failed delivery is logged.
    """
    from feedline.airflow.notify import deliver, run_url
    from feedline.contract import Notify
    from feedline.monitoring.alerts import Alert, compose
    from feedline.monitoring.checks import duration
    from feedline.monitoring.findings import CheckName, Finding, Status

    run = context.get("dag_run") or {}
    dag_id, run_id = run.get("dag_id") or f"feed_{feed}", run.get("dag_run_id") or "(unknown run)"
    url = run_url(cast(dict[str, Any], {"dag": SimpleNamespace(dag_id=dag_id), "run_id": run_id}))
    queued = str(run.get("queued_at") or "an unknown time").replace("T", " ")
    finding = Finding(
        feed,
        CheckName.deadline,
        Status.fail,
        f"run {run_id} of {dag_id} is not finished {duration(minutes)} after it was queued ({queued}); "
        f"the SLA is each file loaded within {duration(minutes)} — open the run for queued or slow "
        f"tasks (warehouse pool slots, parallelism); `feedline status --feed {feed} --files` shows where "
        "each file is",
        threshold=minutes,
    )
    log.warning("feedline.monitor feed=%s check=deadline status=fail message=%r", feed, finding.message)
    try:
        routes = deliver(
            Notify.model_validate(notify), compose(Alert(feed, [finding]), url), cast("Context", {})
        )
    except Exception:
        log.exception("feed %s: the deadline alert could not be sent", feed)
        return
    log.info("feed %s: deadline alert sent via %s", feed, ", ".join(routes) or "no route")
