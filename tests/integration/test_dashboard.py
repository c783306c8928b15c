"""The dashboard in Airflow's real API server, after a run of the quickstart's sample files: every route
refuses anonymous callers, and headless Chromium, logged in through Airflow's own login page, shows the
run's real numbers inside the Airflow UI without a single request leaving the server."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import pytest
from plugin_support import feedline_plugin

from feedline.dashboard.data import percentile
from feedline.quickstart import drop_samples
from feedline.stack import Stack
from support import REPO, age

pytestmark = pytest.mark.airflow

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip
#: docs/dashboard.png is refreshed only on request (UPDATE_DOCS=1), so a test run leaves the tree clean.
SCREENSHOT = REPO / "docs" / "dashboard.png"
ROUTES = ("/feedline/", "/feedline/api/summary", "/feedline/static/dashboard.js")


def _run(project: Path) -> Any:
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(project / "dags"), safe_mode=False).get_dag("feed_orders").test()


def _ledger(project: Path) -> list[tuple[Any, ...]]:
    with duckdb.connect(str(project / "data" / "warehouse.duckdb"), read_only=True) as con:
        return con.execute(
            "select key, state, rows_loaded, rows_rejected, detected_at, loaded_at from feedline_audit.files"
        ).fetchall()


@pytest.fixture(scope="module")
def sample_run(airflow_project: Stack) -> Iterator[Stack]:
    """The plugin registered, and the sample files of `make run` loaded by a real DAG run."""
    with feedline_plugin():
        project = airflow_project.project
        shutil.rmtree(project / "data", ignore_errors=True)
        for path in drop_samples(project / "data" / "landing" / "orders"):
            age(path)
        assert _run(project).state == "success"
        yield airflow_project


@pytest.fixture(scope="module")
def api_server(sample_run: Stack) -> Iterator[str]:
    """Airflow's API server (UI included) for this project, started like `make run` starts it."""
    stack = sample_run
    log = stack.home / "api-server-dashboard.log"
    with open(log, "ab") as out:
        server = subprocess.Popen(
            [str(stack.venv_bin / "airflow"), "api-server", "--port", str(stack.port), "--host", "127.0.0.1"],
            env=stack.env(),
            cwd=stack.project,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 240
        while "metadatabase" not in stack.health():
            assert server.poll() is None, f"the API server exited; see {log}"
            assert time.monotonic() < deadline, f"the API server did not answer in 240 s; see {log}"
            time.sleep(1)
        yield stack.url
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()


def _get(url: str, headers: dict[str, str] | None = None) -> tuple[int, str]:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=30) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


@pytest.mark.parametrize("route", ROUTES)
def test_an_anonymous_caller_gets_401_and_a_bad_token_403(api_server: str, route: str) -> None:
    status, body = _get(api_server + route)
    assert (status, json.loads(body)) == (401, {"detail": "Not authenticated"})
    status, body = _get(api_server + route, {"Authorization": "Bearer not-a-token"})
    assert (status, json.loads(body)) == (403, {"detail": "Invalid JWT token"})
    status, body = _get(api_server + route, {"Cookie": "_token=forged", "Accept": "text/html"})
    assert status == 403
    assert "<a href='/auth/login?next=/feedline/'>Log in to Airflow</a>" in body


def test_the_summary_holds_the_runs_numbers(api_server: str, sample_run: Stack) -> None:
    status, body = _get(
        f"{api_server}/feedline/api/summary?hours=6", {"Authorization": f"Bearer {sample_run.token()}"}
    )
    assert status == 200
    (orders,) = json.loads(body)["feeds"]
    ledger = _ledger(sample_run.project)
    latencies = [(loaded - detected).total_seconds() for *_, detected, loaded in ledger]
    assert orders["states"]["loaded"] == len(ledger) == 3
    assert orders["totals"]["rows_loaded"] == sum(row[2] for row in ledger)
    assert orders["totals"]["rows_rejected"] == sum(row[3] for row in ledger)
    assert orders["totals"]["latency_p50"] == pytest.approx(percentile(latencies, 50))
    assert orders["totals"]["latency_p95"] == pytest.approx(percentile(latencies, 95))
    assert orders["totals"]["quarantine_rate"] == 0
    assert 0 < orders["totals"]["transform_p50"] < 60  # from the metrics the listener recorded
    assert len(orders["hourly"]) == 6


def _kpis(frame: Any) -> dict[str, tuple[str, str]]:
    """{kpi: (data-value, shown text)} of the orders feed."""
    tiles = frame.locator("[data-feed=orders] [data-kpi]")
    return {
        tile.get_attribute("data-kpi"): (
            tile.get_attribute("data-value"),
            tile.locator(".value").inner_text(),
        )
        for tile in tiles.all()
    }


def test_the_dashboard_shows_the_runs_numbers_inside_the_airflow_ui(
    api_server: str, sample_run: Stack
) -> None:
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is missing: `apt-get install chromium` (the tests never download a browser)")
    from playwright.sync_api import sync_playwright

    ledger = _ledger(sample_run.project)
    rows_loaded = sum(row[2] for row in ledger)
    latencies = [(loaded - detected).total_seconds() for *_, detected, loaded in ledger]
    elsewhere: list[str] = []

    def only_this_server(route: Any) -> None:
        if route.request.url.startswith((api_server, "blob:", "data:")):
            route.continue_()
        else:
            elsewhere.append(route.request.url)
            route.abort()

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(viewport={"width": 1280, "height": 820})
            context.route("**/*", only_this_server)
            page = context.new_page()
            page.goto(f"{api_server}/auth/login?next=/feedline/")
            page.get_by_label("Username").fill("admin")
            page.get_by_label("Password").fill(str(sample_run.password()))
            page.get_by_role("button", name="Sign in").click()
            page.wait_for_url(f"{api_server}/feedline/")
            page.wait_for_selector("body[data-ready=true]")

            kpis = _kpis(page)
            assert kpis["files_loaded"] == ("3", "3")
            assert kpis["rows_loaded"] == (str(rows_loaded), f"{rows_loaded:,}")
            assert kpis["quarantine_rate"] == ("0", "0.0 %")
            assert float(kpis["latency_p50"][0]) == pytest.approx(percentile(latencies, 50))
            assert float(kpis["latency_p95"][0]) == pytest.approx(percentile(latencies, 95))
            assert page.locator("[data-feed=orders] [data-state=loaded]").text_content() == "3"
            bars = page.locator("[data-feed=orders] [data-chart=rows] rect[data-rows]").all()
            assert sum(int(bar.get_attribute("data-rows") or 0) for bar in bars) == rows_loaded

            # Linked from the UI: Airflow's own page /plugin/feedline embeds the dashboard.
            page.goto(f"{api_server}/plugin/feedline")
            dashboard = page.frame_locator("iframe[src='/feedline/']")
            dashboard.locator("body[data-ready=true]").wait_for()
            assert _kpis(dashboard)["rows_loaded"][1] == f"{rows_loaded:,}"
            shot = page.screenshot(path=str(SCREENSHOT) if os.environ.get("UPDATE_DOCS") == "1" else None)
            assert shot[:8] == b"\x89PNG\r\n\x1a\n" and len(shot) > 10_000

            # A bad file next: its failure shows with a link to the log of the task that failed on it.
            landing = sample_run.project / "data" / "landing" / "orders"
            (landing / "bad.csv").write_text("order_id,amount\n1,2.00\n")
            age(landing / "bad.csv")
            run = _run(sample_run.project)
            assert run.state == "failed"
            failed = next(t for t in run.get_task_instances() if t.state == "failed" and t.map_index >= 0)
            page.reload()
            dashboard = page.frame_locator("iframe[src='/feedline/']")
            dashboard.locator("body[data-ready=true]").wait_for()
            row = dashboard.locator("[data-feed=orders] tr[data-file='bad.csv']")
            assert "quarantined" in row.inner_text() and "customer_email" in row.inner_text()
            link = row.locator("a.log").get_attribute("href") or ""
            assert link.endswith(
                f"/tasks/process.transform/mapped/{failed.map_index}?try_number={failed.try_number}"
            )
            assert _kpis(dashboard)["quarantine_rate"] == ("0.25", "25.0 %")
            assert _get(link)[0] == 200  # the UI's page for that task try
        finally:
            browser.close()
    assert elsewhere == []
