"""The monitoring checks on real data: files in a landing folder, a real ledger and table in DuckDB and
PostgreSQL, each check healthy and unhealthy; then what is alerted, re-alerted and recorded."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from feedline.contract import Feed, Notify, parse_feed
from feedline.ledger import FileState
from feedline.monitoring import CheckName, Finding, Status, monitor_feed, run_checks
from feedline.monitoring.alerts import compose, due
from feedline.monitoring.record import Previous, history
from feedline.notify import Message
from feedline.pipeline import FeedPipeline
from feedline.sample import write_orders_csv
from feedline.settings import Settings
from feedline.warehouse.base import Warehouse
from support import REPO, age
from warehouses import make_warehouse

ROUTES = {"email": ["ops@example.com"], "slack_webhook_conn_id": "feedline_slack"}


def feed_of(**changes: Any) -> Feed:
    """The example feed as an append feed (so it is reconciled), with `changes` merged in."""
    raw = yaml.safe_load((REPO / "feeds" / "orders.yaml").read_text())
    raw["target"]["mode"] = "append"
    raw["source"]["settle_seconds"] = 0
    raw.update(changes)
    return parse_feed(raw, "test feed")


@pytest.fixture(params=["duckdb", "postgres"])
def warehouse(request: pytest.FixtureRequest, tmp_path: Path) -> Warehouse:
    kind = str(request.param)
    url = None if kind == "duckdb" else request.getfixturevalue("postgres_url")
    return make_warehouse(kind, tmp_path, url)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings.from_env({"FEEDLINE_HOME": str(tmp_path)})


def pipeline_of(feed: Feed, settings: Settings, warehouse: Warehouse) -> FeedPipeline:
    return FeedPipeline(feed, settings, warehouse)


def land(settings: Settings, name: str, *, seed: int = 1, start_id: int = 1, old: float = 60) -> int:
    """Write a sample orders file in the landing folder, `old` seconds old; returns its clean rows."""
    landing = settings.home / "data" / "landing" / "orders"
    landing.mkdir(parents=True, exist_ok=True)
    stats = write_orders_csv(landing / name, rows=60, seed=seed, start_id=start_id)
    age(landing / name, old)
    return stats.clean


def by_check(findings: list[Finding]) -> dict[CheckName, Finding]:
    return {f.check: f for f in findings}


def sql(warehouse: Warehouse, statement: str, params: list[Any] | None = None) -> None:
    with warehouse.transaction() as tx:
        tx.execute(statement.replace("?", tx.dialect.param), params or [])


def now() -> datetime:
    return datetime.now(UTC)


# --- every check healthy ---------------------------------------------------------------------------


def test_a_feed_that_loaded_its_files_is_healthy_on_every_check(
    settings: Settings, warehouse: Warehouse
) -> None:
    feed = feed_of(sla={"new_file_every_minutes": 60, "loaded_within_minutes": 5})
    clean = land(settings, "a.csv")
    pipeline = pipeline_of(feed, settings, warehouse)
    assert pipeline.run_once().files == {"a.csv": "loaded"}

    findings = run_checks(pipeline, now())

    checks = [c for c in CheckName if c is not CheckName.deadline]
    assert [f.check for f in findings] == checks
    assert {f.check: f.status for f in findings} == dict.fromkeys(checks, Status.ok)
    found = by_check(findings)
    assert found[CheckName.reconciliation].observed == clean == found[CheckName.reconciliation].threshold
    assert found[CheckName.freshness].observed is not None and found[CheckName.freshness].observed < 1
    assert found[CheckName.quarantine_rate].observed == 0
    assert found[CheckName.backlog].observed == 0 and found[CheckName.stuck].observed == 0


def test_checks_that_do_not_apply_say_nothing(settings: Settings, warehouse: Warehouse) -> None:
    """No SLA declared: no freshness or latency finding; an upsert feed is not reconciled."""
    feed = feed_of(target={"table": "orders", "mode": "upsert"})
    findings = run_checks(pipeline_of(feed, settings, warehouse), now())
    assert [f.check for f in findings] == [
        CheckName.warehouse,
        CheckName.backlog,
        CheckName.stuck,
        CheckName.quarantine_rate,
    ]


# --- freshness and latency (the SLAs) --------------------------------------------------------------


def test_freshness_fails_when_the_newest_load_is_older_than_the_sla(
    settings: Settings, warehouse: Warehouse
) -> None:
    pipeline = pipeline_of(feed_of(sla={"new_file_every_minutes": 60}), settings, warehouse)
    never = by_check(run_checks(pipeline, now()))[CheckName.freshness]
    assert never.status is Status.warn and "no file loaded yet" in never.message

    land(settings, "a.csv")
    pipeline.run_once()
    assert by_check(run_checks(pipeline, now()))[CheckName.freshness].status is Status.ok

    later = by_check(run_checks(pipeline, now() + timedelta(hours=2)))[CheckName.freshness]
    assert later.status is Status.fail
    assert later.threshold == 60 and later.observed is not None and 119 < later.observed < 122
    assert "newest load 2.0 h ago" in later.message and "every 60 min" in later.message
    assert "feedline status --feed orders" in later.message


def test_latency_fails_for_a_file_waiting_and_for_a_file_loaded_late(
    settings: Settings, warehouse: Warehouse
) -> None:
    pipeline = pipeline_of(feed_of(sla={"loaded_within_minutes": 5}), settings, warehouse)
    land(settings, "a.csv")
    pipeline.discover()

    waiting = by_check(run_checks(pipeline, now() + timedelta(minutes=20)))[CheckName.latency]
    assert waiting.status is Status.fail
    assert "a.csv (still detected) 20 min" in waiting.message
    assert by_check(run_checks(pipeline, now()))[CheckName.latency].status is Status.ok

    # Registered 30 minutes ago and loaded now: it took 30 minutes against a 5-minute SLA.
    sql(
        warehouse,
        'UPDATE feedline_audit.files SET "detected_at" = ?',
        [(now() - timedelta(minutes=30)).replace(tzinfo=None)],
    )
    pipeline.run_once()
    late = by_check(run_checks(pipeline, now()))[CheckName.latency]
    assert late.status is Status.fail and "a.csv (loaded) 30 min" in late.message
    assert late.observed is not None and 29 < late.observed < 31
    # Outside the window it no longer counts.
    beyond = by_check(run_checks(pipeline, now() + timedelta(hours=25)))[CheckName.latency]
    assert beyond.status is Status.ok and beyond.observed is None


# --- backlog, stuck files --------------------------------------------------------------------------


def test_backlog_fails_for_landed_files_the_ledger_never_registered(
    settings: Settings, warehouse: Warehouse
) -> None:
    pipeline = pipeline_of(feed_of(), settings, warehouse)
    land(settings, "old.csv", old=2 * 3600)
    land(settings, "new.csv", seed=2, start_id=1000, old=60)

    backlog = by_check(run_checks(pipeline, now()))[CheckName.backlog]
    assert backlog.status is Status.fail and backlog.observed == 1
    assert "old.csv" in backlog.message and "new.csv" not in backlog.message
    assert "1 file(s) in data/landing/orders for over 60 min but not in the ledger" in backlog.message

    pipeline.discover()
    registered = by_check(run_checks(pipeline, now()))[CheckName.backlog]
    assert registered.status is Status.ok and "2 file(s) in the landing area" in registered.message


def test_a_file_left_in_flight_is_stuck_after_the_threshold(settings: Settings, warehouse: Warehouse) -> None:
    pipeline = pipeline_of(feed_of(monitoring={"stuck_after_minutes": 30}), settings, warehouse)
    land(settings, "a.csv")
    ref = pipeline.discover().refs[0]
    pipeline.transform(ref)  # … and the worker dies before the load

    assert by_check(run_checks(pipeline, now()))[CheckName.stuck].status is Status.ok
    stuck = by_check(run_checks(pipeline, now() + timedelta(minutes=45)))[CheckName.stuck]
    assert stuck.status is Status.fail and stuck.observed == 1 and stuck.threshold == 30
    assert "a.csv transformed for 45 min" in stuck.message
    assert "the next run of feed_orders resumes them" in stuck.message

    pipeline.run_once()
    assert by_check(run_checks(pipeline, now() + timedelta(minutes=45)))[CheckName.stuck].status is Status.ok


# --- reconciliation --------------------------------------------------------------------------------


def test_reconciliation_names_the_file_whose_rows_changed(settings: Settings, warehouse: Warehouse) -> None:
    pipeline = pipeline_of(feed_of(), settings, warehouse)
    a = land(settings, "a.csv", seed=1, start_id=1)
    b = land(settings, "b.csv", seed=2, start_id=5000)
    pipeline.run_once()
    assert by_check(run_checks(pipeline, now()))[CheckName.reconciliation].status is Status.ok

    entry = next(e for e in pipeline.ledger.entries("orders") if e.key == "b.csv")
    sql(
        warehouse,
        'DELETE FROM orders WHERE "_feedline_file_id" = ? AND "order_id" < ?',
        [entry.file_id, 5010],
    )
    remaining = warehouse.count_rows(pipeline.feed)
    assert remaining < a + b

    broken = by_check(run_checks(pipeline, now()))[CheckName.reconciliation]
    assert broken.status is Status.fail
    assert (broken.observed, broken.threshold) == (remaining, a + b)
    assert f"b.csv: ledger {b}, table {remaining - a}" in broken.message
    assert "a.csv" not in broken.message


# --- quarantine rate -------------------------------------------------------------------------------


def test_quarantine_rate_over_the_threshold_fails(settings: Settings, warehouse: Warehouse) -> None:
    strict = pipeline_of(feed_of(), settings, warehouse)
    assert by_check(run_checks(strict, now()))[CheckName.quarantine_rate].observed is None
    land(settings, "good.csv")
    bad = settings.home / "data" / "landing" / "orders" / "bad.csv"
    bad.write_text("order_id,amount\n1,2.00\n")
    age(bad)
    assert strict.run_once().files == {"good.csv": "loaded", "bad.csv": "quarantined"}

    rate = by_check(run_checks(strict, now()))[CheckName.quarantine_rate]
    assert rate.status is Status.fail and rate.observed == 0.5 and rate.threshold == 0.1
    assert "1 of 2 file(s) finished in the last 24 h were quarantined (50%; at most 10%)" in rate.message
    assert "`feedline status --feed orders --state quarantined`" in rate.message
    assert "feedline replay --feed orders --state quarantined" in rate.message

    lenient = pipeline_of(feed_of(monitoring={"max_quarantine_rate": 0.5}), settings, warehouse)
    assert by_check(run_checks(lenient, now()))[CheckName.quarantine_rate].status is Status.ok
    tomorrow = by_check(run_checks(strict, now() + timedelta(hours=25)))[CheckName.quarantine_rate]
    assert tomorrow.status is Status.ok and tomorrow.observed is None


# --- the warehouse ---------------------------------------------------------------------------------


def test_an_unreachable_warehouse_is_one_failure_and_skips_the_rest(settings: Settings) -> None:
    import socket

    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    down = make_warehouse("postgres", settings.home, f"postgresql://postgres@127.0.0.1:{port}/test")
    findings = run_checks(pipeline_of(feed_of(), settings, down), now())
    assert [(f.check, f.status) for f in findings] == [(CheckName.warehouse, Status.fail)]
    assert f"127.0.0.1:{port}/test" in findings[0].message and "unreachable" in findings[0].message


# --- alerting and recording ------------------------------------------------------------------------


class Outbox:
    """A sender that keeps what it is given, standing for the Airflow notifiers (tested for real in
    tests/integration/test_monitoring.py); `routes` is what it reports as delivered."""

    def __init__(self, routes: list[str] | None = None) -> None:
        self.sent: list[tuple[Notify, Message]] = []
        self.routes = ["email"] if routes is None else routes

    def __call__(self, notify: Notify, message: Message) -> list[str]:
        self.sent.append((notify, message))
        return self.routes


@pytest.fixture
def stale(settings: Settings, warehouse: Warehouse) -> FeedPipeline:
    """A feed with a 60-minute freshness SLA and notify routes, whose one file loaded 10 hours ago."""
    feed = feed_of(sla={"new_file_every_minutes": 60}, notify=ROUTES)
    land(settings, "a.csv")
    pipeline = pipeline_of(feed, settings, warehouse)
    pipeline.run_once()
    ten_hours_ago = (now() - timedelta(hours=10)).replace(tzinfo=None)
    sql(warehouse, 'UPDATE feedline_audit.files SET "loaded_at" = ?', [ten_hours_ago])
    return pipeline


def test_a_problem_is_alerted_once_then_again_after_realert_minutes_then_its_recovery(
    stale: FeedPipeline, warehouse: Warehouse
) -> None:
    outbox = Outbox()
    loaded = now() - timedelta(hours=10)

    healthy = monitor_feed(stale, now=loaded + timedelta(minutes=10), run_id="r0", send=outbox)
    assert healthy.problems == [] and outbox.sent == [] and healthy.recorded

    first = monitor_feed(stale, now=loaded + timedelta(hours=2), run_id="r1", send=outbox)
    assert [f.check for f in first.problems] == [CheckName.freshness] and first.routes == ["email"]
    assert len(outbox.sent) == 1
    notify, message = outbox.sent[0]
    assert notify == stale.feed.notify
    assert message.subject == "[feedline] orders: FAIL 1 monitoring problem(s): freshness"
    assert "FAIL freshness: newest load 2.0 h ago" in message.text

    monitor_feed(stale, now=loaded + timedelta(hours=3), run_id="r2", send=outbox)
    assert len(outbox.sent) == 1  # the same problem within realert_minutes (6 h): not sent again
    monitor_feed(stale, now=loaded + timedelta(hours=8, minutes=1), run_id="r3", send=outbox)
    assert len(outbox.sent) == 2 and "newest load 8.0 h ago" in outbox.sent[1][1].text

    land(stale.settings, "b.csv", seed=3, start_id=9000)
    stale.run_once()
    monitor_feed(stale, now=now(), run_id="r4", send=outbox)
    assert len(outbox.sent) == 3
    assert outbox.sent[2][1].subject == "[feedline] orders: recovered: freshness"

    rows = [r for r in history(warehouse, "orders") if r["check"] == "freshness"]
    assert [(r["run_id"], r["status"], r["alerted"]) for r in reversed(rows)] == [
        ("r0", "ok", False),
        ("r1", "fail", True),
        ("r2", "fail", False),
        ("r3", "fail", True),
        ("r4", "ok", True),
    ]
    assert rows[-2]["threshold"] == 60 and 119 < rows[-2]["observed"] < 122
    per_run = [r for r in history(warehouse, "orders") if r["run_id"] == "r1"]
    assert {r["check"] for r in per_run} == {c.value for c in CheckName} - {"latency", "deadline"}


def test_an_alert_no_route_took_is_sent_again_next_run(stale: FeedPipeline) -> None:
    broken = Outbox(routes=[])  # every route failed
    monitor_feed(stale, now=now() - timedelta(hours=1), send=broken)
    monitor_feed(stale, now=now(), send=broken)
    assert len(broken.sent) == 2


def test_without_routes_or_with_alerts_off_nothing_is_sent_but_all_is_recorded(
    settings: Settings, warehouse: Warehouse
) -> None:
    outbox = Outbox()
    for feed in (
        feed_of(sla={"new_file_every_minutes": 60}),
        feed_of(sla={"new_file_every_minutes": 60}, notify=ROUTES, monitoring={"alert": False}),
    ):
        report = monitor_feed(pipeline_of(feed, settings, warehouse), send=outbox)
        assert report.problems and report.recorded and report.routes == []
    assert outbox.sent == []
    assert {r["check"] for r in history(warehouse, "orders")} >= {"freshness", "backlog"}


# --- what is due, and the message, without a warehouse --------------------------------------------


def _finding(check: CheckName, status: Status) -> Finding:
    return Finding("orders", check, status, f"{check.value} is {status.value} <b>")


def test_due_alerts_new_changed_and_expired_problems_and_recoveries() -> None:
    feed = feed_of(monitoring={"realert_minutes": 60})
    at = now()
    findings = [
        _finding(CheckName.freshness, Status.fail),  # new
        _finding(CheckName.stuck, Status.fail),  # was warn: changed
        _finding(CheckName.backlog, Status.fail),  # alerted 10 min ago: not yet
        _finding(CheckName.latency, Status.warn),  # alerted 2 h ago: again
        _finding(CheckName.reconciliation, Status.ok),  # was fail: recovered
        _finding(CheckName.quarantine_rate, Status.ok),  # was ok: nothing
    ]
    before = {
        CheckName.stuck: Previous(Status.warn, at - timedelta(minutes=5)),
        CheckName.backlog: Previous(Status.fail, at - timedelta(minutes=10)),
        CheckName.latency: Previous(Status.warn, at - timedelta(hours=2)),
        CheckName.reconciliation: Previous(Status.fail, at - timedelta(minutes=1)),
        CheckName.quarantine_rate: Previous(Status.ok),
    }
    alert = due(feed, findings, before, at)
    assert [f.check for f in alert.problems] == [CheckName.freshness, CheckName.stuck, CheckName.latency]
    assert [f.check for f in alert.recovered] == [CheckName.reconciliation]

    message = compose(alert, "http://airflow/dags/feedline_monitoring/runs/x")
    assert message.subject == "[feedline] orders: FAIL 3 monitoring problem(s): freshness, stuck, latency"
    assert message.text.splitlines() == [
        "feedline · orders: monitoring",
        "FAIL freshness: freshness is fail <b>",
        "FAIL stuck: stuck is fail <b>",
        "WARN latency: latency is warn <b>",
        "RECOVERED reconciliation: reconciliation is ok <b>",
        "Monitoring run: http://airflow/dags/feedline_monitoring/runs/x",
    ]
    assert "freshness is fail &lt;b&gt;" in message.html and "<b>" not in message.html
    assert not due(feed, [_finding(CheckName.stuck, Status.ok)], {}, at)


def test_loaded_counts_stay_in_the_ledger_after_monitoring(stale: FeedPipeline) -> None:
    """Monitoring only reads the ledger: states and counts are unchanged by a pass."""
    before = [(e.key, e.state, e.rows_loaded) for e in stale.ledger.entries("orders")]
    monitor_feed(stale, send=Outbox())
    assert [(e.key, e.state, e.rows_loaded) for e in stale.ledger.entries("orders")] == before
    assert before[0][1] is FileState.loaded
