"""Metrics from real feed DAG runs (`dag.test()`): the plugin's listener fires in the task process for
every task and in the run's own process for the run (Airflow 3.3 calls both under `dag.test()`), and
its figures land in `feedline_audit.metrics`, CloudWatch (moto) and a StatsD socket."""

from __future__ import annotations

import json
import shutil
import socket
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import duckdb
import pytest
from plugin_support import feedline_plugin

from feedline.metrics import Metric, Unit
from feedline.metrics.cloudwatch import CloudWatchSink
from feedline.sample import write_orders_csv
from feedline.stack import Stack
from support import age

pytestmark = pytest.mark.airflow


@pytest.fixture(scope="module")
def plugin(airflow_project: Stack) -> Iterator[None]:
    with feedline_plugin():
        yield


@pytest.fixture
def project(airflow_project: Stack, plugin: None) -> Path:
    shutil.rmtree(airflow_project.project / "data", ignore_errors=True)
    return airflow_project.project


@pytest.fixture
def statsd() -> Iterator[socket.socket]:
    """A UDP socket standing in for a StatsD daemon."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.settimeout(0.5)
        yield sock


def _received(sock: socket.socket) -> list[str]:
    lines: list[str] = []
    while True:
        try:
            lines += sock.recv(65536).decode().splitlines()
        except TimeoutError:
            return lines


def _run(project: Path) -> Any:
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(project / "dags"), safe_mode=False)
    assert bag.import_errors == {}
    return bag.get_dag("feed_orders").test()


def _query(project: Path, sql: str) -> list[tuple[Any, ...]]:
    """Read the warehouse; the run's metrics thread may hold DuckDB's lock for a moment."""
    for _ in range(100):
        try:
            with duckdb.connect(str(project / "data" / "warehouse.duckdb"), read_only=True) as con:
                return con.execute(sql).fetchall()
        except duckdb.Error:
            time.sleep(0.1)
    raise AssertionError("the warehouse stayed locked")


def _run_metrics(project: Path, run_id: str) -> dict[str, tuple[float, dict[str, str]]]:
    """The run's metrics, written from a background thread: waited for."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        rows = _query(
            project,
            f"select name, value, dimensions from feedline_audit.metrics where run_id = '{run_id}' "
            "and name like 'run.%'",
        )
        if len(rows) == 4:
            return {name: (value, json.loads(dims)) for name, value, dims in rows}
        time.sleep(0.3)
    raise AssertionError(f"run metrics of {run_id} not recorded")


def _ti_seconds(run: Any) -> dict[tuple[str, int], float]:
    return {
        (ti.task_id, ti.map_index): (ti.end_date - ti.start_date).total_seconds()
        for ti in run.get_task_instances()
        if ti.state != "skipped"  # skipped by its trigger rule without running: no listener event
    }


def test_a_run_records_task_file_and_run_metrics_in_every_sink(
    project: Path, moto_endpoint: str, statsd: socket.socket, monkeypatch: pytest.MonkeyPatch
) -> None:
    import boto3

    monkeypatch.setenv("FEEDLINE_METRICS", "audit,cloudwatch,statsd")
    monkeypatch.setenv("FEEDLINE_STATSD", f"127.0.0.1:{statsd.getsockname()[1]}")
    landing = project / "data" / "landing" / "orders"
    landing.mkdir(parents=True)
    write_orders_csv(landing / "a.csv", rows=400, seed=11, start_id=1)
    write_orders_csv(landing / "b.csv.gz", rows=300, seed=12, start_id=10_000, gzip=True)
    age(landing / "a.csv")
    age(landing / "b.csv.gz")

    run = _run(project)
    assert run.state == "success"

    ledger = {
        row[0]: row[1:]
        for row in _query(
            project,
            "select file_id, size, rows_in, rows_loaded, rows_rejected, duplicates, detected_at, loaded_at "
            "from feedline_audit.files",
        )
    }
    assert len(ledger) == 2
    files: dict[tuple[str, str], float] = {
        (file_id, name): value
        for file_id, name, value in _query(
            project, "select file_id, name, value from feedline_audit.metrics where name like 'file.%'"
        )
    }
    for file_id, (size, rows_in, rows_loaded, rejected, duplicates, detected, loaded) in ledger.items():
        assert files[file_id, "file.bytes"] == size
        assert files[file_id, "file.rows_in"] == rows_in
        assert files[file_id, "file.rows_loaded"] == rows_loaded
        assert files[file_id, "file.rows_rejected"] == rejected
        assert files[file_id, "file.duplicates"] == duplicates
        assert files[file_id, "file.latency_seconds"] == pytest.approx((loaded - detected).total_seconds())
        assert 0 < files[file_id, "file.transform_seconds"] < 60
        assert 0 < files[file_id, "file.load_seconds"] < 60

    tasks = _query(
        project,
        "select task_id, coalesce(map_index, -1), name, value, dimensions from feedline_audit.metrics "
        f"where run_id = '{run.run_id}' and name like 'task.%'",
    )
    finished = {(t, i): json.loads(d)["State"] for t, i, name, _, d in tasks if name == "task.finished"}
    assert finished == {
        ("ingest.discover", -1): "success",
        ("process.transform", 0): "success",
        ("process.transform", 1): "success",
        ("process.load", 0): "success",
        ("process.load", 1): "success",
        ("post_process.report", -1): "success",
        ("post_process.archive", -1): "success",
    }  # cleanup never ran: no attempt, no metric
    durations = {(t, i): value for t, i, name, value, _ in tasks if name == "task.duration"}
    assert durations == pytest.approx(_ti_seconds(run))
    assert {value for *_, name, value, _ in tasks if name == "task.retries"} == {0}

    runs = _run_metrics(project, run.run_id)
    assert runs["run.finished"] == (1, {"State": "success"})
    assert runs["run.duration"][0] == pytest.approx((run.end_date - run.start_date).total_seconds())
    assert runs["run.retries"][0] == runs["run.failed_tasks"][0] == 0

    total_rows = sum(row[2] for row in ledger.values())
    cloudwatch = boto3.client("cloudwatch")
    now = datetime.now(UTC)
    stats = cloudwatch.get_metric_statistics(
        Namespace="feedline",
        MetricName="file.rows_loaded",
        Dimensions=[{"Name": "Feed", "Value": "orders"}],
        StartTime=now - timedelta(hours=1),
        EndTime=now + timedelta(minutes=5),
        Period=7200,
        Statistics=["Sum", "SampleCount"],
    )["Datapoints"]
    assert [(p["Sum"], p["SampleCount"]) for p in stats] == [(total_rows, 2)]
    listed = cloudwatch.list_metrics(Namespace="feedline", MetricName="task.finished")["Metrics"]
    assert {
        "Feed": "orders",
        "Task": "process.load",
        "State": "success",
    } in [{d["Name"]: d["Value"] for d in m["Dimensions"]} for m in listed]

    lines = _received(statsd)
    loaded_lines = [line for line in lines if line.startswith("feedline.orders.file.rows_loaded:")]
    assert sorted(loaded_lines) == sorted(
        f"feedline.orders.file.rows_loaded:{row[2]}|c" for row in ledger.values()
    )
    assert "feedline.orders.task.finished.process_load.success:1|c" in lines


def test_a_failed_file_records_its_failed_attempt_with_the_log_and_the_error(project: Path) -> None:
    landing = project / "data" / "landing" / "orders"
    landing.mkdir(parents=True)
    write_orders_csv(landing / "good.csv", rows=200, seed=21, start_id=1)
    (landing / "bad.csv").write_text("order_id,amount\n1,2.00\n")
    age(landing / "good.csv")
    age(landing / "bad.csv")

    run = _run(project)
    assert run.state == "failed"  # the cleanup task fails the run on purpose, naming the bad file

    bad = _query(project, "select file_id, state from feedline_audit.files where key = 'bad.csv'")
    assert [state for _, state in bad] == ["quarantined"]
    ti = next(t for t in run.get_task_instances() if t.task_id == "process.transform" and t.state == "failed")
    rows = _query(
        project,
        "select task_id, map_index, value, dimensions from feedline_audit.metrics "
        f"where name = 'task.finished' and file_id = '{bad[0][0]}'",
    )
    assert len(rows) == 1
    task_id, map_index, value, dimensions = rows[0]
    assert (task_id, map_index, value) == ("process.transform", ti.map_index, 1)
    dims = json.loads(dimensions)
    assert dims["State"] == "failed"
    assert dims["key"] == "bad.csv"
    assert "customer_email" in dims["error"] and "bad.csv" in dims["error"]
    assert dims["log"].endswith(
        f"/dags/feed_orders/runs/{quote(run.run_id)}/tasks/process.transform/mapped/{ti.map_index}"
        f"?try_number={ti.try_number}"
    )

    runs = _run_metrics(project, run.run_id)
    assert runs["run.finished"] == (1, {"State": "failed"})
    assert runs["run.failed_tasks"][0] == 2  # the bad file's transform, and cleanup


def test_cloudwatch_sink_sends_every_metric_in_batches(moto_endpoint: str) -> None:
    import boto3

    ts = datetime.now(UTC).replace(tzinfo=None)
    metrics = [
        Metric("file.rows_loaded", float(n), "cw_feed", Unit.COUNT, ts=ts, dimensions={"key": f"{n}.csv"})
        for n in range(1, 1501)
    ]  # more than one PutMetricData request holds (1000)
    CloudWatchSink().emit(metrics)

    stats = boto3.client("cloudwatch").get_metric_statistics(
        Namespace="feedline",
        MetricName="file.rows_loaded",
        Dimensions=[{"Name": "Feed", "Value": "cw_feed"}],
        StartTime=ts.replace(tzinfo=UTC) - timedelta(minutes=5),
        EndTime=ts.replace(tzinfo=UTC) + timedelta(minutes=5),
        Period=600,
        Statistics=["Sum", "SampleCount"],
    )["Datapoints"]
    assert [(p["Sum"], p["SampleCount"]) for p in stats] == [(1500 * 1501 / 2, 1500)]
