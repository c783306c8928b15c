"""Scale-out end to end: feedline on the CeleryExecutor (Redis broker, Airflow's metadata and the warehouse
on PostgreSQL) with two workers; a feed's files load exactly once, with its tasks spread over both workers.

Deselect with `-m "not celery"`. Skips (loudly) only when no Redis answers and none can be started, or
PostgreSQL is unreachable.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from feedline.sample import write_orders_csv
from feedline.stack import Executor, Stack, free_port
from feedline.stack_celery import CeleryOptions, ping_redis
from support import REPO, make_project
from warehouses import postgres_unreachable

pytestmark = [pytest.mark.e2e, pytest.mark.celery]

REDIS = "redis://127.0.0.1:6379"


@pytest.fixture(scope="module")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The machine's Redis; if none answers, one started here (and stopped afterwards)."""
    if ping_redis(REDIS) is None:
        yield REDIS
        return
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip(
            f"NO REDIS: {ping_redis(REDIS)} and no redis-server to start — the Celery test did not run"
        )
    workdir = tmp_path_factory.mktemp("redis")
    server = subprocess.Popen(
        [binary, "--port", "6379", "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        cwd=workdir,
        stdout=(workdir / "redis.log").open("wb"),
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 15
        while ping_redis(REDIS) is not None and time.monotonic() < deadline and server.poll() is None:
            time.sleep(0.3)
        if ping_redis(REDIS) is not None:
            log = (workdir / "redis.log").read_text(errors="replace")[-500:]
            pytest.skip(f"NO REDIS: redis-server did not start — the Celery test did not run: {log}")
        yield REDIS
    finally:
        server.terminate()
        server.wait(timeout=10)


@pytest.fixture(scope="module")
def stack(redis_server: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    if problem := postgres_unreachable():
        pytest.skip(f"NO POSTGRESQL — the Celery test did not run: {problem}")
    feed = (REPO / "feeds" / "orders.yaml").read_text().replace('sweep: "*/30 * * * *"', "sweep: null")
    project = make_project(tmp_path_factory.mktemp("celery") / "project", {"orders.yaml": feed})
    stack = Stack(
        project=project,
        home=project / ".airflow",
        port=free_port(),
        parallelism=4,
        executor=Executor.celery,
        celery=CeleryOptions(workers=2, concurrency=2, redis=redis_server),
    )
    try:
        stack.configure()
        stack.migrate()
        stack.start()
        stack.wait_healthy(timeout=300)
        yield stack
    finally:
        stack.destroy()
        assert stack.pids() == {}


def _wait(condition: Any, timeout: float, what: str, stack: Stack) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(2)
    raise AssertionError(f"{what}: not after {timeout:.0f}s; logs under {stack.home}/logs and processes/")


def _sql(url: str, sql: str) -> list[tuple[Any, ...]]:
    try:
        with psycopg.connect(url) as conn:
            return conn.execute(sql).fetchall()
    except psycopg.errors.UndefinedTable:
        return []


def _drop(landing: Path, count: int) -> int:
    """`count` files with disjoint order ids, each renamed into place whole; the clean rows they hold."""
    landing.mkdir(parents=True, exist_ok=True)
    clean = 0
    for i in range(count):
        partial = landing / f".part-{i}.csv"
        clean += write_orders_csv(partial, rows=120, seed=70 + i, start_id=1 + 1_000 * i).clean
        partial.replace(landing / f"celery-{i}.csv")
    return clean


def test_feed_dag_completes_with_tasks_on_both_workers_exactly_once(stack: Stack) -> None:
    services = stack.services()
    warehouse, metadata = services["warehouse"], services["metadata"]
    _wait(lambda: bool(stack.api("GET", "dags?tags=feedline")["dags"]), 180, "feed DAG parsed", stack)  # type: ignore[index]

    expected = _drop(stack.project / "data" / "landing" / "orders", count=4)
    _wait(
        lambda: (
            _sql(warehouse, "select state, count(*) from feedline_audit.files group by state")
            == [("loaded", 4)]
        ),
        300,
        "4 files loaded",
        stack,
    )
    assert _sql(warehouse, "select count(*), count(distinct order_id) from orders") == [(expected, expected)]
    assert _sql(warehouse, "select sum(rows_loaded) from feedline_audit.files") == [(expected,)]

    def runs() -> list[dict[str, Any]]:
        return stack.api("GET", "dags/feed_orders/dagRuns?limit=100")["dag_runs"]  # type: ignore[index, no-any-return]

    _wait(lambda: all(r["state"] in ("success", "failed") for r in runs()), 180, "runs finished", stack)
    assert {r["state"] for r in runs()} == {"success"}

    hosts: dict[str, set[str]] = {}
    for run in runs():
        body = stack.api("GET", f"dags/feed_orders/dagRuns/{run['dag_run_id']}/taskInstances?limit=100")
        for ti in body["task_instances"]:  # type: ignore[index]
            if ti["state"] == "success":
                assert ti["queue"] == "default"
                hosts.setdefault(ti["hostname"], set()).add(f"{ti['task_id']}[{ti['map_index']}]")
    host = socket.gethostname()
    assert set(hosts) == {f"worker1@{host}", f"worker2@{host}"}, hosts
    ran = sorted(task for tasks in hosts.values() for task in tasks)
    assert sum(t.startswith("process.transform[") for t in ran) == 4
    assert sum(t.startswith("process.load[") for t in ran) == 4

    # Airflow's own state lives in PostgreSQL, not in a SQLite file.
    assert not (stack.home / "airflow.db").exists()
    assert _sql(
        metadata, "select count(*) from dag_run where dag_id = 'feed_orders' and state = 'success'"
    ) == [(len(runs()),)]
