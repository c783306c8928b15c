"""Fault: the warehouse connection is killed in the middle of a load (PostgreSQL, `pg_terminate_backend`
from another session while the load's COPY streams rows)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

import psycopg
import pytest
from fault_support import (
    Project,
    assert_settled,
    control_snapshot,
    drop,
    orders_feed,
    snapshot,
    staging_tables,
)

from feedline.errors import TransientError
from feedline.ledger import FileState

TARGET_COPY = 'COPY "public"."orders" %'


class BackendKiller(threading.Thread):
    """Watches pg_stat_activity from its own session; once a feedline session has been running a statement
    matching `pattern` for `after` seconds, terminates that backend. `killed` holds what it cut."""

    def __init__(self, url: str, pattern: str, *, after: float = 0.2, timeout: float = 60) -> None:
        super().__init__(daemon=True)
        self.url, self.pattern, self.after, self.timeout = url, pattern, after, timeout
        self.killed: str | None = None
        self.done = threading.Event()

    def run(self) -> None:
        query = (
            "SELECT pid, query FROM pg_stat_activity WHERE datname = current_database() "
            "AND application_name = 'feedline' AND state = 'active' AND query LIKE %s"
        )
        deadline = time.monotonic() + self.timeout
        with psycopg.connect(self.url, autocommit=True) as admin:
            seen: dict[int, float] = {}
            while not self.done.is_set() and time.monotonic() < deadline:
                for pid, text in admin.execute(query, [self.pattern]).fetchall():
                    first = seen.setdefault(pid, time.monotonic())
                    running = time.monotonic() - first >= self.after
                    if running and admin.execute("SELECT pg_terminate_backend(%s)", [pid]).fetchone() == (
                        True,
                    ):
                        self.killed = text
                        return
                time.sleep(0.005)


@pytest.mark.timeout(180)
def test_connection_killed_mid_copy_rolls_back_and_the_retry_loads_once(
    new_project: Callable[..., Project], postgres_url: str, tmp_path: Path
) -> None:
    project = new_project(postgres_url)
    feed = project.add_feed(orders_feed())
    pipeline = project.pipeline()
    landing = project.landing()
    drop(landing, "first.csv", rows=2_000, seed=21, start_id=1)
    assert pipeline.run_once().files == {"first.csv": "loaded"}
    before = snapshot(pipeline.warehouse, feed)
    ledger_before = pipeline.ledger.entries("orders")

    clean = drop(landing, "big.csv", rows=500_000, seed=22, start_id=1_000_000)
    (ref,) = pipeline.discover().refs
    result = pipeline.transform(ref)

    killer = BackendKiller(postgres_url, TARGET_COPY)
    killer.start()
    try:
        with pytest.raises(TransientError) as failure:
            pipeline.load(ref, result)
    finally:
        killer.done.set()
        killer.join()
    assert killer.killed is not None and killer.killed.startswith('COPY "public"."orders"'), (
        "the load's COPY into the target was never seen running: make the file bigger"
    )
    message = str(failure.value)
    assert message.startswith("orders: loading") and ref["file_id"] in message, message
    assert "terminat" in message.lower() or "connection" in message.lower(), message

    # The failed attempt changed nothing: no row of it, no staging table, no ledger mark.
    assert snapshot(pipeline.warehouse, feed) == before
    assert staging_tables(pipeline.warehouse) == []
    entry = pipeline.ledger.get(ref["file_id"])
    assert entry is not None
    assert (entry.state, entry.rows_loaded, entry.loaded_at) == (FileState.loading, None, None)
    assert [e for e in pipeline.ledger.entries("orders") if e.file_id != ref["file_id"]] == ledger_before

    # The retry (what Airflow's load task retry does, with the same transform result) loads it once.
    retried = pipeline.load(ref, result)
    assert (retried["rows_loaded"], retried["already_loaded"]) == (clean, False)
    assert pipeline.load(ref, result)["already_loaded"] is True
    pipeline.archive()

    archive = Path(pipeline.settings.area("archive", "orders"))
    expected = control_snapshot(feed, [[archive / "first.csv"], [archive / "big.csv"]], tmp_path / "control")
    assert expected.rows == before.rows + clean
    assert_settled(pipeline, expected, files=2)
