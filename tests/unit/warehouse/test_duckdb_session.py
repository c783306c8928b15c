"""DuckDB warehouse sessions: the transactions inside share one open file; each still commits or rolls
back on its own; the write lock is released when the session ends; other threads are not let in."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

from feedline.errors import TransientError
from feedline.warehouse.duckdb import DuckDBWarehouse


class Counting(DuckDBWarehouse):
    def __init__(self, path: Path, **kwargs: Any) -> None:
        super().__init__(path, **kwargs)
        self.connects = 0

    def _connect(self) -> Any:
        self.connects += 1
        return super()._connect()


def _rows(path: Path) -> list[tuple[Any, ...]]:
    with DuckDBWarehouse(path).transaction() as tx:
        tx.execute("SELECT n FROM t ORDER BY n")
        return tx.fetchall()


def _insert_then_fail(wh: DuckDBWarehouse, n: int) -> None:
    with wh.transaction() as tx:
        tx.execute("INSERT INTO t VALUES (?)", [n])
        raise RuntimeError("the step failed")


def _other_process_can_write(path: Path) -> bool:
    code = f"import duckdb; duckdb.connect({str(path)!r}).execute('INSERT INTO t VALUES (100)').close()"
    return subprocess.run([sys.executable, "-c", code], capture_output=True).returncode == 0


@pytest.fixture
def wh(tmp_path: Path) -> Counting:
    wh = Counting(tmp_path / "w.duckdb", lock_timeout=0.2)
    with wh.transaction() as tx:
        tx.execute("CREATE TABLE t (n INTEGER)")
    wh.connects = 0
    return wh


def test_transactions_in_a_session_share_one_connection_and_commit_each(wh: Counting) -> None:
    with wh.session():
        for n in range(5):
            with wh.transaction() as tx:
                tx.execute("INSERT INTO t VALUES (?)", [n])
        with wh.session(), wh.transaction() as tx:  # a nested session joins the outer one
            tx.execute("INSERT INTO t VALUES (5)")
        assert not _other_process_can_write(wh.path)  # the write lock is held meanwhile
    assert wh.connects == 1
    assert _rows(wh.path) == [(n,) for n in range(6)]
    assert _other_process_can_write(wh.path)  # released at the end of the session


def test_a_failed_transaction_rolls_back_alone_and_the_next_gets_a_fresh_connection(wh: Counting) -> None:
    with wh.session():
        with wh.transaction() as tx:
            tx.execute("INSERT INTO t VALUES (1)")
        with pytest.raises(RuntimeError, match="the step failed"):
            _insert_then_fail(wh, 2)
        with wh.transaction() as tx:
            tx.execute("INSERT INTO t VALUES (3)")
    assert _rows(wh.path) == [(1,), (3,)]
    assert wh.connects == 2  # the failure gave up the held connection; the rest connected on their own
    assert _other_process_can_write(wh.path)


def test_another_thread_does_not_use_the_sessions_connection(wh: Counting) -> None:
    seen: list[BaseException] = []

    def other() -> None:
        try:
            with wh.transaction() as tx:
                tx.execute("INSERT INTO t VALUES (9)")
        except BaseException as exc:
            seen.append(exc)

    with wh.session():
        thread = threading.Thread(target=other)
        thread.start()
        thread.join()
    assert wh.connects == 2  # the thread opened a connection of its own (same process: DuckDB allows it)
    assert seen == [] and _rows(wh.path) == [(9,)]


def test_without_a_session_each_transaction_opens_and_closes_the_file(wh: Counting) -> None:
    for n in range(3):
        with wh.transaction() as tx:
            tx.execute("INSERT INTO t VALUES (?)", [n])
        assert _other_process_can_write(wh.path)
    assert wh.connects == 3


def test_a_lock_held_by_another_process_is_still_a_transient_error_in_a_session(wh: Counting) -> None:
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            f"import duckdb, time; c = duckdb.connect({str(wh.path)!r}); print(1, flush=True); "
            "time.sleep(30)",
        ],
        stdout=subprocess.PIPE,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == b"1"
        with pytest.raises(TransientError, match="write lock"), wh.session():
            pass
    finally:
        holder.kill()
        holder.wait()
