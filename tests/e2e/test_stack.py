"""End to end: the real scheduler, triggerer, dag-processor and API server load dropped files once."""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import pytest

from feedline.sample import write_orders_csv
from feedline.stack import Stack, free_port
from support import REPO, make_project

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    # No fallback sweep: every run here must come from a file event.
    feed = (REPO / "feeds" / "orders.yaml").read_text().replace('sweep: "*/30 * * * *"', "sweep: null")
    assert "sweep: null" in feed
    project = make_project(tmp_path_factory.mktemp("e2e") / "project", {"orders.yaml": feed})
    stack = Stack(project=project, home=project / ".airflow", port=free_port(), parallelism=2)
    stack.configure()
    stack.migrate()
    stack.start()
    try:
        stack.wait_healthy(timeout=240)
        yield stack
    finally:
        stack.stop()
        assert stack.pids() == {}


def _query(stack: Stack, sql: str) -> list[tuple[Any, ...]]:
    """Read the warehouse; a task may hold DuckDB's write lock for a moment, so retry briefly."""
    for _ in range(50):
        try:
            with duckdb.connect(str(stack.project / "data" / "warehouse.duckdb"), read_only=True) as con:
                return con.execute(sql).fetchall()
        except duckdb.Error:
            time.sleep(0.2)
    raise AssertionError("warehouse stayed locked")


def _drop(landing: Path, name: str, rows: int, seed: int, start_id: int) -> int:
    partial = landing / f".{name}.part"
    stats = write_orders_csv(partial, rows=rows, seed=seed, start_id=start_id)
    os.replace(partial, landing / name)
    return stats.rows - stats.bad - stats.duplicates


def _wait(stack: Stack, condition: Any, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(1)
    logs = stack.home / "logs"
    raise AssertionError(f"condition not met after {timeout}s; logs under {logs}")


def _loaded(stack: Stack) -> dict[str, str]:
    try:
        return dict(_query(stack, "select key, state from feedline_audit.files"))
    except duckdb.Error:
        return {}
    except AssertionError:
        return {}


def test_dropped_files_are_loaded_exactly_once_without_manual_action(stack: Stack) -> None:
    landing = stack.project / "data" / "landing" / "orders"
    landing.mkdir(parents=True, exist_ok=True)
    _wait(stack, lambda: bool(stack.api("GET", "dags?tags=feedline")["dags"]), timeout=120)  # type: ignore[index]

    first = _drop(landing, "one.csv", rows=300, seed=31, start_id=1)
    _wait(stack, lambda: _loaded(stack).get("one.csv") == "loaded")
    second = _drop(landing, "two.csv", rows=200, seed=32, start_id=5_000)
    _wait(stack, lambda: _loaded(stack).get("two.csv") == "loaded")
    assert _query(stack, "select count(*), count(distinct order_id) from orders") == [
        (first + second, first + second)
    ]

    # Re-deliver the first file: the ledger knows the content; nothing is loaded twice.
    archived = stack.project / "data" / "archive" / "orders" / "one.csv"
    _wait(stack, archived.exists, timeout=60)
    shutil.copy(archived, landing / ".one.csv.part")
    os.replace(landing / ".one.csv.part", landing / "one.csv")
    _wait(stack, lambda: not (landing / "one.csv").exists(), timeout=120)
    assert _query(stack, "select count(*) from orders") == [(first + second,)]
    assert _query(stack, "select count(*) from feedline_audit.files") == [(2,)]

    def runs() -> list[tuple[str, str]]:
        body = stack.api("GET", "dags/feed_orders/dagRuns?limit=100")
        return [(r["run_type"], r["state"]) for r in body["dag_runs"]]  # type: ignore[index]

    _wait(stack, lambda: all(state in ("success", "failed") for _, state in runs()), timeout=120)
    assert {run_type for run_type, _ in runs()} == {"asset_triggered"}
    assert all(state == "success" for _, state in runs()), runs()
