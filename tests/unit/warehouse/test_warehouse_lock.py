"""DuckDB's one-writer-process rule: another process's lock is waited for, then reported as transient."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from clean_files import load, make_feed, row, write_parquet

from feedline.contract import Feed
from feedline.errors import TransientError
from feedline.ledger import FileState, Ledger
from feedline.warehouse.duckdb import DuckDBWarehouse

HOLDER = """
import sys, time, duckdb
conn = duckdb.connect(sys.argv[1], read_only=sys.argv[3] == "ro")
print("locked", flush=True)
time.sleep(float(sys.argv[2]))
"""

Holder = Callable[..., subprocess.Popen[str]]


@pytest.fixture
def warehouse(duckdb_warehouse: DuckDBWarehouse) -> DuckDBWarehouse:
    """DuckDB only: the rule under test is DuckDB's."""
    return duckdb_warehouse


@pytest.fixture
def hold_lock() -> Iterator[Holder]:
    """Start a process that opens the DuckDB file, says so, and keeps it open for `seconds`."""
    started: list[subprocess.Popen[str]] = []

    def _hold(path: Path, seconds: float, mode: str = "rw") -> subprocess.Popen[str]:
        proc = subprocess.Popen(
            [sys.executable, "-c", HOLDER, str(path), str(seconds), mode], stdout=subprocess.PIPE, text=True
        )
        started.append(proc)
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "locked"
        return proc

    yield _hold
    for proc in started:
        proc.kill()
        proc.wait()


def test_a_load_waits_for_another_writer_and_then_succeeds(
    warehouse: DuckDBWarehouse, register: Callable[[Feed], str], tmp_path: Path, hold_lock: Holder
) -> None:
    feed = make_feed("append")
    file_id = register(feed)
    parquet = write_parquet(tmp_path / "a.parquet", [row(1, "a"), row(2, "b")])
    holder = hold_lock(warehouse.path, 1.5)
    started = time.monotonic()
    out = load(warehouse, feed, file_id, parquet)
    waited = time.monotonic() - started
    assert holder.poll() is not None, "the load must not have run while the other process held the file"
    assert waited >= 0.5
    assert out.rows_loaded == 2
    assert warehouse.count_rows(feed) == 2
    entry = Ledger(warehouse).get(file_id)
    assert entry is not None
    assert entry.state is FileState.loaded


def test_a_lock_held_past_lock_timeout_is_a_transient_error(
    warehouse: DuckDBWarehouse, register: Callable[[Feed], str], tmp_path: Path, hold_lock: Holder
) -> None:
    feed = make_feed("append")
    file_id = register(feed)
    parquet = write_parquet(tmp_path / "a.parquet", [row(1, "a")])
    hold_lock(warehouse.path, 30)
    impatient = DuckDBWarehouse(warehouse.path, lock_timeout=0.4)
    started = time.monotonic()
    with pytest.raises(TransientError, match="another process holds the DuckDB write lock") as info:
        load(impatient, feed, file_id, parquet)
    assert 0.4 <= time.monotonic() - started < 5
    assert str(warehouse.path) in str(info.value)


def test_read_only_status_queries_wait_for_a_writer_too(
    warehouse: DuckDBWarehouse, hold_lock: Holder
) -> None:
    reader = DuckDBWarehouse(warehouse.path, read_only=True, lock_timeout=0.3)
    assert Ledger(reader).summary() == []
    hold_lock(warehouse.path, 30)
    with pytest.raises(TransientError, match="holds the DuckDB write lock"):
        Ledger(reader).summary()


def test_read_only_processes_share_the_file(warehouse: DuckDBWarehouse, hold_lock: Holder) -> None:
    hold_lock(warehouse.path, 30, "ro")
    reader = DuckDBWarehouse(warehouse.path, read_only=True, lock_timeout=5)
    assert Ledger(reader).entries() == []
