"""Faults on the running Airflow stack (scheduler, triggerer, dag-processor, API server, LocalExecutor
workers): a worker killed in the middle of a transform, the same file event three times, the triggerer
stopped while files land. One stack serves the module; each test uses its own files and order ids."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest
from fault_support import (
    assert_settled,
    drop,
    feed_text,
    orders_feed,
    parquet_snapshot,
    redrop,
    wait_for,
)

from feedline.contract import load_feed
from feedline.errors import FeedlineError
from feedline.ledger import FileState, LedgerEntry
from feedline.pipeline import FeedPipeline
from feedline.settings import Settings
from feedline.stack import Stack, free_port
from feedline.warehouse.duckdb import DuckDBWarehouse
from support import make_project

pytestmark = pytest.mark.e2e

BIG_ROWS = 3_000_000  # ~270 MB of CSV: its transform runs a few seconds even on a quiet machine


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    # No sweep: every run comes from a file event. Short retries: a killed task is retried after 1 s.
    feed = orders_feed(
        schedule={"trigger": "watcher", "sweep": None, "poll_seconds": 1},
        retries={"retries": 2, "delay_seconds": 1},
    )
    project = make_project(tmp_path_factory.mktemp("faults") / "project", {"orders.yaml": feed_text(feed)})
    stack = Stack(project=project, home=project / ".airflow", port=free_port(), parallelism=2)
    stack.configure()
    stack.migrate()
    stack.start()
    try:
        stack.wait_healthy(timeout=240)
        wait_for(lambda: stack.api("GET", "dags?tags=feedline")["dags"], 120, "the feed DAG parsed")  # type: ignore[index]
        yield stack
    finally:
        stack.stop(timeout=10)  # then SIGKILL: nothing of this throwaway stack needs a clean exit
        assert stack.pids() == {}


# --- reading the stack's state ---------------------------------------------------------------------------


def _reader(stack: Stack, lock_timeout: float = 60) -> FeedPipeline:
    """The feed's pipeline over the stack's project, reading its DuckDB read-only (tasks may be writing)."""
    settings = Settings.from_env({"FEEDLINE_HOME": str(stack.project)})
    warehouse = DuckDBWarehouse(settings.warehouse, read_only=True, lock_timeout=lock_timeout)
    return FeedPipeline(load_feed(stack.project / "feeds" / "orders.yaml"), settings, warehouse)


def _entries(stack: Stack) -> dict[str, LedgerEntry]:
    if not (stack.project / "data" / "warehouse.duckdb").exists():
        return {}
    try:
        return {e.key: e for e in _reader(stack, lock_timeout=5).ledger.entries("orders")}
    except FeedlineError:  # no ledger table yet, or a task holds the write lock
        return {}


def _state(stack: Stack, key: str) -> FileState | None:
    entry = _entries(stack).get(key)
    return None if entry is None else entry.state


def _landing(stack: Stack) -> Path:
    path = stack.project / "data" / "landing" / "orders"
    path.mkdir(parents=True, exist_ok=True)
    return path


def _runs(stack: Stack) -> list[dict[str, Any]]:
    return stack.api("GET", "dags/feed_orders/dagRuns?limit=100")["dag_runs"]  # type: ignore[index, no-any-return]


def _task_instances(stack: Stack, task_id: str) -> list[dict[str, Any]]:
    path = f"dags/feed_orders/dagRuns/~/taskInstances?task_id={task_id}&limit=100"
    return stack.api("GET", path)["task_instances"]  # type: ignore[index, no-any-return]


def _wait_runs_settled(stack: Stack, timeout: float = 180) -> list[dict[str, Any]]:
    def settled() -> list[dict[str, Any]] | None:
        runs = _runs(stack)
        return runs if runs and all(r["state"] in ("success", "failed") for r in runs) else None

    return wait_for(settled, timeout, "every DAG run finished", interval=1)


def _assert_stack_settled(stack: Stack, keys: list[str], clean_rows: int) -> dict[str, LedgerEntry]:
    """The files `keys` loaded: their rows exactly those of their clean Parquet (`clean_rows` in all), each
    key once in the whole table, every ledger entry loaded, no staging, no partial output, landing empty,
    raw files archived, every DAG run a success."""
    wait_for(lambda: not any(_landing(stack).iterdir()), 120, "landing emptied by the archive step")
    runs = _wait_runs_settled(stack)
    assert {r["state"] for r in runs} == {"success"}, runs
    pipeline = _reader(stack)
    entries = {e.key: e for e in pipeline.ledger.entries("orders")}
    processed = Path(pipeline.settings.area("processed", "orders"))
    expected = parquet_snapshot(pipeline.feed, [processed / f"{entries[k].file_id}.parquet" for k in keys])
    assert expected.rows == expected.keys == clean_rows
    assert_settled(pipeline, expected, files=len(entries), scratch_clean=False, only_keys=keys)
    return entries


# --- the task process ------------------------------------------------------------------------------------


def _running_transform(stack: Stack, old_runs: set[str]) -> dict[str, Any] | None:
    """The running transform task of a run started after `old_runs` (its map index label is rendered only
    when the task ends, so the run, not the label, tells which file it is: each test drops its own)."""
    for ti in _task_instances(stack, "process.transform"):
        if ti["dag_run_id"] not in old_runs and ti["state"] == "running":
            return ti
    return None


def _task_process(stack: Stack, ti_id: str) -> psutil.Process | None:
    """The process running one task instance: a descendant of this stack's scheduler (LocalExecutor worker
    → supervisor → task) titled `airflow worker -- <ti id>`. Never a process of another stack."""
    scheduler = psutil.Process(stack.pids()["scheduler"])
    for proc in scheduler.children(recursive=True):
        try:
            if f"airflow worker -- {ti_id}" in " ".join(proc.cmdline()):
                return proc
        except psutil.Error:
            continue
    return None


# --- the faults ------------------------------------------------------------------------------------------


@pytest.mark.timeout(420)
def test_worker_killed_mid_transform_is_retried_and_loads_once(stack: Stack) -> None:
    old_runs = {r["dag_run_id"] for r in _runs(stack)}
    clean = drop(_landing(stack), "big.csv", rows=BIG_ROWS, seed=71, start_id=10_000_000, settled=False)

    wait_for(lambda: _state(stack, "big.csv") is FileState.transforming, 240, "big.csv transforming", 0.2)
    ti = wait_for(lambda: _running_transform(stack, old_runs), 30, "the transform task running", 0.2)
    proc = wait_for(lambda: _task_process(stack, ti["id"]), 30, "the transform's task process", 0.2)
    proc.send_signal(signal.SIGKILL)  # at once: the ledger already said `transforming`
    proc.wait(timeout=30)
    killed = _entries(stack)["big.csv"]
    assert (killed.state, killed.attempts) == (FileState.transforming, 1), "killed before the transform ended"

    wait_for(lambda: _state(stack, "big.csv") is FileState.loaded, 300, "big.csv loaded after the retry", 2)
    entries = _assert_stack_settled(stack, ["big.csv"], clean)
    assert (entries["big.csv"].attempts, entries["big.csv"].rows_loaded) == (2, clean)
    (transform,) = [
        t for t in _task_instances(stack, "process.transform") if t["rendered_map_index"] == "big.csv"
    ]
    (load,) = [t for t in _task_instances(stack, "process.load") if t["rendered_map_index"] == "big.csv"]
    assert (transform["state"], transform["try_number"]) == ("success", 2)
    assert (load["state"], load["try_number"]) == ("success", 1)


@pytest.mark.timeout(300)
def test_the_same_file_event_three_times_loads_once(stack: Stack) -> None:
    landing = _landing(stack)
    clean = drop(landing, "again.csv", rows=3_000, seed=72, start_id=20_000_000, settled=False)
    content = (landing / "again.csv").read_bytes()
    wait_for(lambda: not (landing / "again.csv").exists(), 180, "again.csv loaded and archived", interval=1)
    loaded = _entries(stack)["again.csv"]

    def events() -> int:
        body = stack.api("GET", "assets/events?name_pattern=feedline_orders_landing&limit=1")
        return int(body["total_entries"])  # type: ignore[index]

    baseline = events()
    for n in range(1, 4):
        # Each delivery once the previous one is archived: a copy replaced while the run of the previous
        # event still held the file would be archived by that run, with no event of its own (harmless,
        # but then this test would wait for an event that never comes).
        wait_for(lambda: not (landing / "again.csv").exists(), 120, f"delivery {n - 1} archived", interval=1)
        redrop(landing, "again.csv", content)
        wait_for(lambda n=n: events() >= baseline + n, 60, f"the file event of redelivery {n}")

    entries = _assert_stack_settled(stack, ["again.csv"], clean)
    assert entries["again.csv"] == loaded, "the ledger entry did not change"


@pytest.mark.timeout(420)
def test_triggerer_restart_with_files_landing_loads_every_file_once(stack: Stack) -> None:
    landing = _landing(stack)
    runs_before = len(_runs(stack))
    triggerer = stack.pids()["triggerer"]
    os.killpg(triggerer, signal.SIGKILL)  # a crash: no graceful hand-over of its triggers
    wait_for(lambda: "triggerer" not in stack.pids(), 30, "the triggerer gone")

    clean = sum(
        drop(landing, f"while-down-{n}.csv", rows=2_000, seed=73 + n, start_id=30_000_000 + n * 100_000)
        for n in range(3)
    )
    time.sleep(6)  # events would have fired by now: files settle after 2 s and are polled every 1 s
    assert len(_runs(stack)) == runs_before, "no run may start while the triggerer is down"
    assert sorted(p.name for p in landing.iterdir()) == [f"while-down-{n}.csv" for n in range(3)]

    stack.start()
    stack.wait_healthy(timeout=240)
    wait_for(
        lambda: all(_state(stack, f"while-down-{n}.csv") is FileState.loaded for n in range(3)),
        240,
        "the files that landed while the triggerer was down loaded",
        interval=2,
    )
    keys = [f"while-down-{n}.csv" for n in range(3)]
    entries = _assert_stack_settled(stack, keys, clean)
    assert all(entries[f"while-down-{n}.csv"].attempts == 1 for n in range(3))
