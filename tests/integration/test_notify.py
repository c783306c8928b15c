"""Notifications from feed DAGs, received by a real SMTP server (aiosmtpd) and a real HTTP server standing in
for Slack's incoming webhook; Airflow connections come from AIRFLOW_CONN_* variables."""

from __future__ import annotations

import email
import email.policy
import json
import shutil
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import quote

import duckdb
import pytest
import yaml

from feedline.contract import load_feed
from feedline.sample import write_orders_csv
from feedline.stack import Stack, free_port
from support import age

pytestmark = pytest.mark.airflow

RECIPIENT = "ops@example.com"
SENDER = "feedline@example.com"
WEBHOOK_PATH = "/services/T0001/B0001/test-token"
REASON = "transform of orders/bad.csv failed: the header lacks column 'customer_email'"

PROBE_DAGS = '''"""Test DAGs, written by tests/integration/test_notify.py: notify_quarantine in tasks."""

import os
from pathlib import Path

from airflow.sdk import DAG, TaskGroup, get_current_context, task
from airflow.sdk.exceptions import AirflowFailException

from feedline.airflow.notify import FeedNotifier, notify_quarantine, on_failure_callbacks
from feedline.contract import load_feed

FEED = load_feed(Path(os.environ["FEEDLINE_HOME"]) / "feeds" / "orders.yaml")
REF = {"key": "bad.csv", "file_id": "0" * 32, "version": "sha256:0"}
REASON = __REASON__
ARGS = {"retries": 0, "on_failure_callback": on_failure_callbacks(FEED)}

with DAG("notify_probe_quarantine", schedule=None, default_args=ARGS):

    @task(task_id="transform")
    def quarantine_then_fail() -> None:
        """What the feed's per-file guard does with a bad file: quarantine, report, fail without retry."""
        get_current_context()["file_key"] = REF["key"]
        notify_quarantine(FEED, REF, REASON)
        raise AirflowFailException(REASON + " - the file is quarantined; fix it, then replay")

    quarantine_then_fail()

with DAG("notify_probe_survives", schedule=None, default_args=ARGS):

    @task(task_id="transform")
    def quarantine_and_finish() -> str:
        notify_quarantine(FEED, REF, REASON)
        return "finished"

    quarantine_and_finish()

with DAG("notify_probe_counts", schedule=None, default_args={"retries": 0}):
    with TaskGroup("post_process"):

        @task(task_id="report")
        def report() -> dict:
            """A run summary shaped like the feed DAG's report task's, its files from the run's conf."""
            files = get_current_context()["dag_run"].conf.get("files", {})
            return {"feed": "orders", "files": files, "rows_loaded": 40 * len(files), "rows_rejected": 1}

        summary = report()

    @task(task_id="announce")
    def announce() -> None:
        FeedNotifier(FEED, "success")(get_current_context())

    summary >> announce()
'''.replace("__REASON__", repr(REASON))


@dataclass
class Inbox:
    """Mail the SMTP server accepted: (envelope recipients, parsed message)."""

    port: int = 0
    received: list[tuple[list[str], EmailMessage]] = field(default_factory=list)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        self.received.append((list(envelope.rcpt_tos), message))  # type: ignore[arg-type]
        return "250 OK"

    def html(self, index: int = 0) -> str:
        body = self.received[index][1].get_body(("html",))
        assert body is not None
        return str(body.get_content())


@dataclass
class Webhook:
    """JSON bodies posted to the stand-in Slack webhook, with their paths."""

    port: int
    posts: list[tuple[str, dict[str, Any]]] = field(default_factory=list)


@pytest.fixture(scope="module")
def inbox() -> Iterator[Inbox]:
    from aiosmtpd.controller import Controller

    handler = Inbox(port=free_port())
    controller = Controller(handler, hostname="127.0.0.1", port=handler.port)
    controller.start()
    yield handler
    controller.stop()


@pytest.fixture(scope="module")
def webhook() -> Iterator[Webhook]:
    posts: list[tuple[str, dict[str, Any]]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            posts.append((self.path, json.loads(self.rfile.read(length))))
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield Webhook(port=server.server_address[1], posts=posts)
    server.shutdown()
    server.server_close()


def smtp_connection(port: int) -> str:
    extra = {"disable_tls": True, "disable_ssl": True, "from_email": SENDER, "timeout": 5, "retry_limit": 0}
    return json.dumps({"conn_type": "smtp", "host": "127.0.0.1", "port": port, "extra": extra})


@pytest.fixture
def routes(inbox: Inbox, webhook: Webhook, monkeypatch: pytest.MonkeyPatch) -> tuple[Inbox, Webhook]:
    """Both connections set, both servers empty."""
    monkeypatch.setenv("AIRFLOW_CONN_FEEDLINE_SMTP", smtp_connection(inbox.port))
    url = f"http://127.0.0.1:{webhook.port}{WEBHOOK_PATH}"
    monkeypatch.setenv(
        "AIRFLOW_CONN_FEEDLINE_SLACK", json.dumps({"conn_type": "slackwebhook", "password": url})
    )
    inbox.received.clear()
    webhook.posts.clear()
    return inbox, webhook


@pytest.fixture
def project(airflow_project: Stack) -> Iterator[Path]:
    """The shared project with an empty data folder and the probe DAGs; the feed file restored after."""
    root = airflow_project.project
    shutil.rmtree(root / "data", ignore_errors=True)
    feed_file = root / "feeds" / "orders.yaml"
    original = feed_file.read_text()
    probe = root / "dags" / "notify_probe.py"
    probe.write_text(PROBE_DAGS)
    try:
        yield root
    finally:
        feed_file.write_text(original)
        probe.unlink()


def write_feed(project: Path, notify: dict[str, Any] | None) -> None:
    """The example feed with no retries (a failure is final at once) and the given notify section."""
    feed_file = project / "feeds" / "orders.yaml"
    raw = yaml.safe_load(feed_file.read_text())
    raw["retries"] = {"retries": 0}
    raw.pop("notify", None)
    if notify is not None:
        raw["notify"] = notify
    feed_file.write_text(yaml.safe_dump(raw, sort_keys=False))


ROUTES = {"email": [RECIPIENT], "smtp_conn_id": "feedline_smtp", "slack_webhook_conn_id": "feedline_slack"}


@pytest.fixture
def lambda_down(monkeypatch: pytest.MonkeyPatch) -> None:
    """Run the transform as a Lambda nobody answers for: a transient failure of one file's task."""
    extra = {"region_name": "us-east-1", "endpoint_url": f"http://127.0.0.1:{free_port()}"}
    aws = {"conn_type": "aws", "login": "testing", "password": "testing", "extra": extra}
    monkeypatch.setenv("AIRFLOW_CONN_FEEDLINE_AWS", json.dumps(aws))
    monkeypatch.setenv("FEEDLINE_AWS_CONN_ID", "feedline_aws")
    monkeypatch.setenv("FEEDLINE_TRANSFORM", "lambda")
    monkeypatch.setenv("FEEDLINE_LAMBDA_FUNCTION", "feedline-transform")


def dag(project: Path, dag_id: str) -> Any:
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(project / "dags"), safe_mode=False)
    assert bag.import_errors == {}
    return bag.get_dag(dag_id)


def land(project: Path, name: str = "a.csv") -> int:
    landing = project / "data" / "landing" / "orders"
    landing.mkdir(parents=True, exist_ok=True)
    stats = write_orders_csv(landing / name, rows=120, seed=7)
    age(landing / name)
    return stats.rows - stats.bad - stats.duplicates


def test_a_failing_file_task_sends_one_email_and_one_slack_message(
    project: Path, airflow_project: Stack, routes: tuple[Inbox, Webhook], lambda_down: None
) -> None:
    inbox, webhook = routes
    write_feed(project, ROUTES)
    land(project, "a.csv")

    run = dag(project, "feed_orders").test()

    assert run.state == "failed"
    assert run.get_task_instance("process.transform", map_index=0).state == "failed"
    # one message per event: the cleanup task's deliberate failure restates it and is not sent again
    assert len(inbox.received) == 1
    recipients, message = inbox.received[0]
    assert recipients == [RECIPIENT]
    assert message["To"] == RECIPIENT and message["From"] == SENDER
    assert message["Subject"] == "[feedline] orders: a.csv failed in process.transform"
    body = inbox.html()
    log_url = (
        f"http://127.0.0.1:{airflow_project.port}/dags/feed_orders/runs/{quote(run.run_id)}"
        "/tasks/process.transform/mapped/0?try_number=1"
    )
    for fragment in ("<td>orders</td>", "<td>a.csv</td>", "TransientError", "no answer from Lambda"):
        assert fragment in body
    assert f'<a href="{log_url}">' in body
    assert "feedline replay --feed orders --file a.csv" in body

    assert [path for path, _ in webhook.posts] == [WEBHOOK_PATH]
    text = webhook.posts[0][1]["text"]
    assert text.startswith("feedline · orders: a.csv failed in process.transform\n")
    assert "File: a.csv" in text and "Error: TransientError: Lambda function feedline-transform" in text
    assert f"Log: {log_url}" in text
    ledger = duckdb.connect(str(project / "data" / "warehouse.duckdb"), read_only=True)
    with ledger:
        assert ledger.sql("select key, state from feedline_audit.files").fetchall() == [("a.csv", "failed")]


def test_a_quarantine_reported_inside_the_task_is_sent_once(
    project: Path, airflow_project: Stack, routes: tuple[Inbox, Webhook]
) -> None:
    inbox, webhook = routes
    write_feed(project, ROUTES)

    run = dag(project, "notify_probe_quarantine").test()

    assert run.state == "failed"
    assert len(inbox.received) == 1  # the quarantine message; the task failure that follows is not resent
    assert inbox.received[0][1]["Subject"] == "[feedline] orders: bad.csv quarantined"
    body = inbox.html()
    assert "<td>quarantined</td>" in body and "<td>bad.csv</td>" in body
    assert "the header lacks column &#x27;customer_email&#x27;" in body
    assert "feedline replay --feed orders --file bad.csv" in body
    assert f"http://127.0.0.1:{airflow_project.port}/dags/notify_probe_quarantine/runs/" in body
    assert len(webhook.posts) == 1
    assert "State: quarantined" in webhook.posts[0][1]["text"]


def test_without_routes_nothing_is_sent_and_the_run_still_reports_its_failure(
    project: Path, routes: tuple[Inbox, Webhook], lambda_down: None
) -> None:
    inbox, webhook = routes
    write_feed(project, None)
    land(project, "a.csv")
    feed_dag = dag(project, "feed_orders")
    assert feed_dag.on_success_callback is None
    assert all(not task.on_failure_callback for task in feed_dag.tasks)

    assert feed_dag.test().state == "failed"
    assert dag(project, "notify_probe_quarantine").test().state == "failed"

    assert inbox.received == [] and webhook.posts == []


def test_an_unreachable_smtp_server_fails_neither_the_task_nor_the_other_route(
    project: Path, routes: tuple[Inbox, Webhook], monkeypatch: pytest.MonkeyPatch
) -> None:
    from feedline.airflow.notify import FeedNotifier

    inbox, webhook = routes
    monkeypatch.setenv("AIRFLOW_CONN_FEEDLINE_SMTP", smtp_connection(free_port()))  # nobody listens
    write_feed(project, ROUTES)

    run = dag(project, "notify_probe_survives").test()

    assert run.state == "success"
    assert run.get_task_instance("transform").state == "success"
    assert inbox.received == []
    assert len(webhook.posts) == 1 and "bad.csv quarantined" in webhook.posts[0][1]["text"]

    # As a callback, with a bare context: it returns, and Slack still gets its message.
    notifier = FeedNotifier(load_feed(project / "feeds" / "orders.yaml"), "failure")
    notifier({"run_id": "manual__x", "exception": RuntimeError("disk full")})  # type: ignore[arg-type]
    assert len(webhook.posts) == 2 and "Error: RuntimeError: disk full" in webhook.posts[1][1]["text"]


def test_a_successful_run_sends_one_success_message(
    project: Path, airflow_project: Stack, routes: tuple[Inbox, Webhook]
) -> None:
    inbox, webhook = routes
    write_feed(project, {**ROUTES, "on_success": True})
    land(project, "good.csv")

    run = dag(project, "feed_orders").test()

    assert run.state == "success"
    # dag.test() runs DAG callbacks in this process, where XCom cannot be read: no counts here (the
    # dag-processor reads them; see the next test for the counts from a run's report).
    assert [m["Subject"] for _, m in inbox.received] == ["[feedline] orders: run succeeded"]
    run_link = f"http://127.0.0.1:{airflow_project.port}/dags/feed_orders/runs/{quote(run.run_id)}"
    assert f'<a href="{run_link}">' in inbox.html()
    assert "<td>succeeded</td>" in inbox.html() and "nothing to do" in inbox.html()
    assert len(webhook.posts) == 1 and f"Log: {run_link}" in webhook.posts[0][1]["text"]


def test_success_counts_come_from_the_run_report_and_an_empty_sweep_is_not_news(
    project: Path, routes: tuple[Inbox, Webhook]
) -> None:
    inbox, webhook = routes
    write_feed(project, {**ROUTES, "on_success": True})
    files = {"a.csv": {"state": "loaded"}, "b.csv": {"state": "loaded"}, "c.csv": {"state": "quarantined"}}
    probe = dag(project, "notify_probe_counts")

    assert probe.test(run_conf={"files": files}).state == "success"
    assert probe.test(run_conf={"files": {}}).state == "success"

    assert [m["Subject"] for _, m in inbox.received] == ["[feedline] orders: run succeeded, 3 file(s)"]
    assert "files 3, loaded 2, rows loaded 120, rows rejected 1" in inbox.html()
    assert len(webhook.posts) == 1 and "Counts: files 3, loaded 2" in webhook.posts[0][1]["text"]
