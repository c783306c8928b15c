"""Faults of S3 (moto over HTTP): the server goes down in the middle of a run; the same object is delivered
three times."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import boto3
import pytest
from fault_support import (
    Project,
    RetryLog,
    StoppableMotoServer,
    assert_settled,
    control_snapshot,
    orders_feed,
    run_with_retries,
    wait_for,
)

from feedline.errors import FeedlineError
from feedline.ledger import FileState
from feedline.pipeline import FeedPipeline
from feedline.replay import replay
from feedline.sample import write_orders_csv

FILES = 3
OUTAGE_SECONDS = 4.0


@pytest.fixture
def s3(s3_server: StoppableMotoServer) -> Any:
    return boto3.client("s3")


def _s3_project(new_project: Callable[..., Project], s3: Any, warehouse: str) -> Project:
    """A project whose source and lake areas are all on S3: raw files in one bucket, the lake in another."""
    raw, lake = f"raw-{uuid.uuid4().hex[:8]}", f"lake-{uuid.uuid4().hex[:8]}"
    for bucket in (raw, lake):
        s3.create_bucket(Bucket=bucket)
    project = new_project(
        warehouse,
        FEEDLINE_PROCESSED=f"s3://{lake}/processed",
        FEEDLINE_QUARANTINE=f"s3://{lake}/quarantine",
        FEEDLINE_ARCHIVE=f"s3://{lake}/archive",
    )
    project.add_feed(orders_feed(source={"uri": f"s3://{raw}/orders/"}))
    return project


def _upload_files(s3: Any, project: Project, work: Path, rows: int) -> list[Path]:
    bucket = project.feeds["orders"].source.uri.removeprefix("s3://").split("/")[0]
    work.mkdir()
    files = []
    for n in range(FILES):
        path = work / f"part-{n}.csv"
        write_orders_csv(path, rows=rows, seed=30 + n, start_id=1 + n * 1_000_000)
        s3.upload_file(str(path), bucket, f"orders/{path.name}")
        files.append(path)
    return files


def _outage_once_transforming(server: StoppableMotoServer, watcher: FeedPipeline) -> None:
    """Take S3 down as soon as the run is transforming a file, for OUTAGE_SECONDS."""

    def transforming() -> bool:
        try:
            return any(e.state is FileState.transforming for e in watcher.ledger.entries("orders"))
        except FeedlineError:  # the run has not created the ledger yet
            return False

    wait_for(transforming, 120, "the run started transforming a file", interval=0.05)
    server.stop()
    time.sleep(OUTAGE_SECONDS)
    server.start()


def _in_thread(fn: Callable[[], object]) -> tuple[threading.Thread, list[BaseException]]:
    errors: list[BaseException] = []

    def run() -> None:
        try:
            fn()
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, errors


@pytest.mark.timeout(300)
def test_s3_down_mid_run_is_retried_and_loads_everything_once(
    s3_server: StoppableMotoServer,
    s3: Any,
    new_project: Callable[..., Project],
    postgres_url: str,
    tmp_path: Path,
) -> None:
    """Recovery by retries: each step retried on a transient error, as the feed's Airflow tasks are."""
    project = _s3_project(new_project, s3, postgres_url)
    files = _upload_files(s3, project, tmp_path / "files", rows=20_000)
    pipeline = project.pipeline()
    log = RetryLog()
    run, crashed = _in_thread(lambda: run_with_retries(pipeline, log))
    _outage_once_transforming(s3_server, project.pipeline())
    run.join(timeout=240)
    assert not run.is_alive() and crashed == []

    assert log.errors, "the outage must have made at least one step fail"
    for step, error in log.errors:
        assert "S3" in error and ("cannot reach" in error or "unavailable" in error), (step, error)
    expected = control_snapshot(project.feeds["orders"], [files], tmp_path / "control")
    assert_settled(pipeline, expected, files=FILES, s3_client=s3)


@pytest.mark.timeout(300)
def test_s3_down_during_feedline_run_then_replay_loads_everything_once(
    s3_server: StoppableMotoServer,
    s3: Any,
    new_project: Callable[..., Project],
    postgres_url: str,
    tmp_path: Path,
) -> None:
    """Recovery by replay: `run_once` records the files it could not process as `failed`; once S3 is
    back, a replay re-opens them and the next run loads each exactly once."""
    project = _s3_project(new_project, s3, postgres_url)
    files = _upload_files(s3, project, tmp_path / "files", rows=20_000)
    pipeline = project.pipeline()
    run, crashed = _in_thread(pipeline.run_once)
    _outage_once_transforming(s3_server, project.pipeline())
    run.join(timeout=240)
    assert not run.is_alive()
    assert all("S3" in str(exc) for exc in crashed), crashed  # the archive step may meet the outage too

    failed = pipeline.ledger.entries("orders", [FileState.failed])
    assert failed, "the outage must have failed at least one file"
    assert all("S3" in (e.error or "") for e in failed), [e.error for e in failed]
    assert {e.state for e in pipeline.ledger.entries("orders")} <= {FileState.loaded, FileState.failed}

    result = replay(pipeline)
    assert sorted(e.key for e in result.reopened) == sorted(e.key for e in failed)
    assert result.skipped == {}
    summary = pipeline.run_once()
    assert summary.files == dict.fromkeys(sorted(e.key for e in failed), "loaded")
    expected = control_snapshot(project.feeds["orders"], [files], tmp_path / "control")
    assert_settled(pipeline, expected, files=FILES, s3_client=s3)


@pytest.mark.timeout(120)
def test_the_same_object_delivered_three_times_loads_once(
    s3_server: StoppableMotoServer, s3: Any, new_project: Callable[..., Project], tmp_path: Path
) -> None:
    """Three more PUTs of the same bytes under the same key (three ObjectCreated events, the same ETag),
    a run after each: the ledger knows the content, nothing is loaded again."""
    project = _s3_project(new_project, s3, str(tmp_path / "warehouse.duckdb"))
    feed = project.feeds["orders"]
    bucket = feed.source.uri.removeprefix("s3://").split("/")[0]
    path = tmp_path / "once.csv"
    clean = write_orders_csv(path, rows=5_000, seed=44, start_id=1).clean
    pipeline = project.pipeline()
    s3.upload_file(str(path), bucket, "orders/once.csv")
    assert pipeline.run_once().files == {"once.csv": "loaded"}
    for _ in range(3):
        s3.upload_file(str(path), bucket, "orders/once.csv")
        summary = pipeline.run_once()
        assert (summary.files, summary.rows_loaded) == ({}, 0)

    expected = control_snapshot(feed, [[path]], tmp_path / "control")
    assert (expected.rows, expected.keys) == (clean, clean)
    (entry,) = assert_settled(pipeline, expected, files=1, s3_client=s3)
    assert (entry.attempts, entry.rows_loaded) == (1, clean)
