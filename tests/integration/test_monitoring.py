"""The monitoring DAG and the SLA deadline alert through Airflow: real files, the DuckDB warehouse and its
ledger, alerts received by a real SMTP server and a stand-in Slack webhook (from test_notify)."""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import duckdb
import pytest
import test_notify as servers
import yaml

from feedline.sample import write_orders_csv
from feedline.stack import Stack
from support import age

pytestmark = pytest.mark.airflow

# The SMTP server and the stand-in Slack webhook of the notification tests, and their connections.
Inbox, Webhook, ROUTES = servers.Inbox, servers.Webhook, servers.ROUTES
inbox, webhook, routes = servers.inbox, servers.webhook, servers.routes


@pytest.fixture
def project(airflow_project: Stack) -> Iterator[Path]:
    """The shared project with an empty data folder; the feed file restored afterwards."""
    root = airflow_project.project
    shutil.rmtree(root / "data", ignore_errors=True)
    feed_file = root / "feeds" / "orders.yaml"
    original = feed_file.read_text()
    yield root
    feed_file.write_text(original)


def write_feed(project: Path, **sections: Any) -> None:
    feed_file = project / "feeds" / "orders.yaml"
    raw = yaml.safe_load(feed_file.read_text())
    raw.update(sections)
    feed_file.write_text(yaml.safe_dump(raw, sort_keys=False))


def dag(project: Path, dag_id: str) -> Any:
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(project / "dags"), safe_mode=False)
    assert bag.import_errors == {}
    return bag.get_dag(dag_id)


def land(project: Path, name: str, seconds_old: float = 60, seed: int = 5) -> Path:
    landing = project / "data" / "landing" / "orders"
    landing.mkdir(parents=True, exist_ok=True)
    write_orders_csv(landing / name, rows=80, seed=seed)
    return age(landing / name, seconds_old)


def pipeline(project: Path) -> Any:
    from feedline.contract import load_feed
    from feedline.pipeline import FeedPipeline
    from feedline.settings import Settings

    settings = Settings.from_env({"FEEDLINE_HOME": str(project)})
    return FeedPipeline(load_feed(project / "feeds" / "orders.yaml"), settings)


@pytest.fixture
def deadline_probe(project: Path) -> Iterator[Callable[[Path], Path]]:
    """A feed of its own, `sla_probe`, whose runs must finish 1.2 s after being queued: a DAG the
    database has never seen, so its first serialized version carries the deadline alert."""
    created: list[Path] = []

    def write(root: Path) -> Path:
        raw = yaml.safe_load((root / "feeds" / "orders.yaml").read_text())
        raw.update(name="sla_probe", sla={"loaded_within_minutes": 0.02}, notify=ROUTES)
        raw["source"]["uri"] = "data/landing/sla_probe"
        raw["target"]["table"] = "sla_probe"
        path = root / "feeds" / "sla_probe.yaml"
        path.write_text(yaml.safe_dump(raw, sort_keys=False))
        created.append(path)
        return path

    yield write
    for path in created:
        path.unlink()


def sync_dags() -> None:
    """Parse the DAG folder into the metadata database, as the dag-processor does (and dag.test())."""
    from airflow.dag_processing.bundles.manager import DagBundlesManager
    from airflow.dag_processing.dagbag import BundleDagBag, sync_bag_to_db

    manager = DagBundlesManager()
    manager.sync_bundles_to_db()
    for bundle in manager.get_all_dag_bundles():
        bundle.initialize()
        bag = BundleDagBag(dag_folder=bundle.path, bundle_path=bundle.path, bundle_name=bundle.name)
        sync_bag_to_db(bag, bundle.name, bundle.version)


def warehouse_rows(project: Path, sql: str) -> list[tuple[Any, ...]]:
    with duckdb.connect(str(project / "data" / "warehouse.duckdb"), read_only=True) as con:
        return con.execute(sql).fetchall()


def findings(project: Path, run_id: str) -> dict[str, tuple[str, bool]]:
    rows = warehouse_rows(
        project,
        f"select \"check\", status, alerted from feedline_audit.monitoring where run_id = '{run_id}'",
    )
    return {check: (status, alerted) for check, status, alerted in rows}


def test_the_dag_is_hourly_and_one_mapped_check_task_per_feed(project: Path) -> None:
    monitoring = dag(project, "feedline_monitoring")
    assert monitoring.timetable.expression == "0 * * * *"
    assert monitoring.catchup is False and monitoring.max_active_runs == 1
    assert {t.task_id for t in monitoring.tasks} == {"feeds", "check", "summary"}
    assert monitoring.get_task("check").pool == "feedline_warehouse"
    assert monitoring.get_task("summary").trigger_rule == "all_done"


def test_a_healthy_run_records_every_check_and_says_so(
    project: Path, routes: tuple[Inbox, Webhook], capsys: pytest.CaptureFixture[str]
) -> None:
    inbox, webhook = routes
    write_feed(project, sla={"new_file_every_minutes": 60, "loaded_within_minutes": 30}, notify=ROUTES)
    land(project, "a.csv")
    # Loaded the scheduler-free way (`feedline run`): Airflow 3.3.2's dag.test() cannot finish a run of
    # a DAG with a deadline alert, which loaded_within_minutes adds (see docs/monitoring.md).
    assert pipeline(project).run_once().files == {"a.csv": "loaded"}

    run = dag(project, "feedline_monitoring").test()

    assert run.state == "success"
    assert run.get_task_instance("check", map_index=0).state == "success"
    assert "all feeds healthy: 1 feed(s) checked" in capsys.readouterr().out
    assert findings(project, run.run_id) == {
        check: ("ok", False)
        for check in ("warehouse", "freshness", "latency", "backlog", "stuck", "quarantine_rate")
    }  # orders is an upsert feed: nothing to reconcile
    assert inbox.received == [] and webhook.posts == []


def test_a_missed_freshness_sla_and_a_backlog_are_alerted_once_on_every_route(
    project: Path, routes: tuple[Inbox, Webhook], capsys: pytest.CaptureFixture[str]
) -> None:
    inbox, webhook = routes
    write_feed(
        project,
        sla={"new_file_every_minutes": 60},
        monitoring={"backlog_after_minutes": 30},
        notify=ROUTES,
    )
    land(project, "a.csv")
    assert dag(project, "feed_orders").test().state == "success"
    two_hours_ago = (datetime.now(UTC) - timedelta(hours=2)).replace(tzinfo=None)
    with duckdb.connect(str(project / "data" / "warehouse.duckdb")) as con:
        con.execute("update feedline_audit.files set loaded_at = ?", [two_hours_ago])
    land(project, "stalled.csv", seconds_old=3 * 3600, seed=6)  # landed, never registered

    first = dag(project, "feedline_monitoring").test()

    assert first.state == "success"  # the findings are the news, not a failed run
    out = capsys.readouterr().out
    assert "2 problem(s) in 1 feed(s):" in out and "FAIL orders.freshness: newest load 2.0 h ago" in out
    assert findings(project, first.run_id) == {
        "warehouse": ("ok", False),
        "freshness": ("fail", True),
        "backlog": ("fail", True),
        "stuck": ("ok", False),
        "quarantine_rate": ("ok", False),
    }
    assert [m["Subject"] for _, m in inbox.received] == [
        "[feedline] orders: FAIL 2 monitoring problem(s): freshness, backlog"
    ]
    body = inbox.html()
    assert "newest load 2.0 h ago" in body and "the SLA is a new file at least every 60 min" in body
    assert "stalled.csv" in body and "not in the ledger" in body
    assert "/dags/feedline_monitoring/runs/" in body
    (path, post), *rest = webhook.posts
    assert rest == [] and path.endswith("/test-token")
    assert post["text"].splitlines()[1].startswith("FAIL freshness: newest load 2.0 h ago")
    assert "FAIL backlog: 1 file(s) in data/landing/orders for over 30 min" in post["text"]

    # An hour later the same problems are recorded again, not sent again (realert_minutes: 6 h).
    second = dag(project, "feedline_monitoring").test()
    assert second.state == "success"
    assert findings(project, second.run_id)["freshness"] == ("fail", False)
    assert len(inbox.received) == 1 and len(webhook.posts) == 1


def test_the_summary_fails_the_run_when_a_feeds_checks_did_not_finish(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from airflow.sdk.exceptions import AirflowFailException

    from feedline.airflow.monitoring_dag import summarize

    warn = {"feed": "orders", "check": "freshness", "status": "warn", "message": "no file loaded yet"}
    report = {"feed": "orders", "findings": [warn]}
    with pytest.raises(AirflowFailException, match="the checks of feed\\(s\\) invoices did not run"):
        summarize(["orders", "invoices"], [report])
    assert "WARN orders.freshness: no file loaded yet" in capsys.readouterr().out
    assert summarize([], []) == {"feeds": [], "problems": []}
    assert "no feed to check" in capsys.readouterr().out


# --- the SLA as a deadline alert -----------------------------------------------------------------


def test_the_feed_dag_carries_a_deadline_alert_only_with_the_sla(project: Path) -> None:
    from airflow.serialization.serialized_objects import DagSerialization

    assert not dag(project, "feed_orders").deadline
    write_feed(project, sla={"loaded_within_minutes": 5}, notify=ROUTES)
    (alert,) = dag(project, "feed_orders").deadline
    assert type(alert.reference).__name__ == "DagRunQueuedAtDeadline"
    assert alert.interval == timedelta(minutes=5)
    assert alert.callback.path == "feedline.airflow.monitoring_dag.deadline_missed"
    assert alert.callback.kwargs["feed"] == "orders" and alert.callback.kwargs["minutes"] == 5
    assert alert.callback.kwargs["notify"]["email"] == ["ops@example.com"]
    serialized = DagSerialization.to_dict(dag(project, "feed_orders"))
    assert "deadline_missed" in str(serialized["dag"]["deadline"])


def test_a_run_unfinished_past_its_deadline_alerts_the_feeds_routes(
    project: Path, routes: tuple[Inbox, Webhook], deadline_probe: Callable[[Path], Path]
) -> None:
    """The scheduler's part, step by step: the DAG synced with its deadline alert, a run queued (as a
    file's asset event queues it), the deadline passing, the scheduler's miss handling queuing the
    callback; then the callback run as the executor's callback process runs it."""
    from airflow.models.deadline import Deadline
    from airflow.models.serialized_dag import SerializedDagModel
    from airflow.sdk.execution_time.callback_supervisor import execute_callback
    from airflow.utils.session import create_session
    from airflow.utils.state import DagRunState
    from airflow.utils.types import DagRunTriggeredByType, DagRunType
    from sqlalchemy import select

    inbox, webhook = routes
    deadline_probe(project)
    sync_dags()

    with create_session() as session:
        scheduler_dag = SerializedDagModel.get_dag("feed_sla_probe", session=session)
        assert scheduler_dag is not None
        queued = scheduler_dag.create_dagrun(
            run_id=f"asset_triggered__{datetime.now(UTC).isoformat()}",
            logical_date=None,
            data_interval=None,
            run_after=datetime.now(UTC),
            conf={},
            run_type=DagRunType.ASSET_TRIGGERED,
            triggered_by=DagRunTriggeredByType.ASSET,
            state=DagRunState.QUEUED,
            session=session,
        )
        run_id, dagrun_id = queued.run_id, queued.id
    time.sleep(1.5)
    with create_session() as session:
        (deadline,) = session.scalars(select(Deadline).where(Deadline.dagrun_id == dagrun_id)).all()
        assert deadline.deadline_time < datetime.now(UTC) and not deadline.missed
        deadline.handle_miss(session)
        data = dict(deadline.callback.data)

    ok, error = execute_callback(data["path"], data["kwargs"], "", None, _Log())
    assert (ok, error) == (True, None)

    assert [m["Subject"] for _, m in inbox.received] == [
        "[feedline] sla_probe: FAIL 1 monitoring problem(s): deadline"
    ]
    body = inbox.html()
    assert f"run {run_id} of feed_sla_probe is not finished 0 min after it was queued" in body
    assert "feedline status --feed sla_probe --files" in body
    assert f"/dags/feed_sla_probe/runs/{quote(run_id)}" in body
    assert len(webhook.posts) == 1 and "FAIL deadline: run " in webhook.posts[0][1]["text"]


class _Log:
    """The structured logger `execute_callback` expects (it logs with keyword arguments)."""

    def __getattr__(self, name: str) -> Any:
        return lambda *args, **kwargs: None
