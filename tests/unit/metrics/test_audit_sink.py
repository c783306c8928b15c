"""The audit sink on every backend, and its spool while another process holds DuckDB's write lock."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

from feedline.metrics import Metric, Origin, Unit, emit
from feedline.metrics.audit import AuditSink, spool_folder
from feedline.warehouse.base import Warehouse
from feedline.warehouse.duckdb import DuckDBWarehouse

TS = datetime(2026, 3, 1, 12, 30, 15)


def _rows(warehouse: Warehouse) -> list[tuple[Any, ...]]:
    with warehouse.transaction() as tx:
        tx.execute(
            'SELECT "ts", "feed", "dag_id", "run_id", "task_id", "map_index", "file_id", "name", "value", '
            '"unit", "dimensions" FROM "feedline_audit"."metrics" ORDER BY "name", "value"'
        )
        return tx.fetchall()


def _metrics(n: int = 2, feed: str = "orders") -> list[Metric]:
    origin = Origin(feed, "feed_orders", "run 1", "process.load", 3, "ab" * 16, ts=TS)
    return [origin.metric("file.rows_loaded", 100 + i) for i in range(n)] + [
        origin.metric("task.finished", 1, Task="process.load", State="success", key="a.csv")
    ]


def test_metrics_are_rows_of_the_audit_table_on_every_backend(any_warehouse: Warehouse) -> None:
    AuditSink(any_warehouse).emit(_metrics())
    AuditSink(any_warehouse).emit(_metrics(1, feed="invoices"))  # the table exists now: rows append

    rows = _rows(any_warehouse)
    common = (TS, "feed_orders", "run 1", "process.load", 3, "ab" * 16)
    assert [r for r in rows if r[1] == "orders"] == [
        (TS, "orders", *common[1:], "file.rows_loaded", 100.0, "Count", "{}"),
        (TS, "orders", *common[1:], "file.rows_loaded", 101.0, "Count", "{}"),
        (
            TS,
            "orders",
            *common[1:],
            "task.finished",
            1.0,
            "Count",
            '{"State":"success","Task":"process.load","key":"a.csv"}',
        ),
    ]
    assert len([r for r in rows if r[1] == "invoices"]) == 2


@contextmanager
def _lock_held(path: Path) -> Iterator[None]:
    """Another process holding the DuckDB file open for writing, as a long load would."""
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            f"import duckdb, sys; c = duckdb.connect({str(path)!r}); print('held', flush=True); "
            "sys.stdin.read()",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        yield
    finally:
        assert holder.stdin is not None
        holder.stdin.close()
        holder.wait(timeout=30)


def test_a_busy_duckdb_spools_the_metrics_and_the_next_write_inserts_them(tmp_path: Path) -> None:
    path = tmp_path / "warehouse.duckdb"
    warehouse = DuckDBWarehouse(path, lock_timeout=0.3)
    AuditSink(warehouse).emit(_metrics(1))  # creates the file and the table
    spool = spool_folder(warehouse)
    assert spool == tmp_path / "warehouse.duckdb.metrics-spool"

    with _lock_held(path):
        failed = emit(_metrics(2, feed="busy"), [AuditSink(warehouse)])
        assert failed == []  # spooled, not failed: the task goes on at once
        spooled = sorted(spool.glob("*.jsonl"))
        assert len(spooled) == 1
        lines = [json.loads(line) for line in spooled[0].read_text().splitlines()]
        assert [(m["feed"], m["name"], m["value"]) for m in lines] == [
            ("busy", "file.rows_loaded", 100.0),
            ("busy", "file.rows_loaded", 101.0),
            ("busy", "task.finished", 1.0),
        ]

    AuditSink(warehouse).emit(_metrics(1, feed="later"))

    feeds = [r[1] for r in _rows(warehouse)]
    assert sorted(feeds) == ["busy"] * 3 + ["later"] * 2 + ["orders"] * 2
    assert list(spool.iterdir()) == []


def test_a_spooled_batch_is_inserted_once_even_when_the_insert_fails_first(tmp_path: Path) -> None:
    warehouse = DuckDBWarehouse(tmp_path / "w.duckdb", lock_timeout=0.3)
    sink = AuditSink(warehouse)
    sink.emit(_metrics(1))
    with _lock_held(tmp_path / "w.duckdb"):
        sink.emit(_metrics(1, feed="spooled"))
    bad = Metric("file.rows_loaded", 1.0, "x", Unit.COUNT, ts=TS, map_index=2**40)  # overflows INT
    assert emit([bad], [sink]) == ["audit"]
    assert len(list(sink.spool.glob("*.jsonl"))) == 1  # put back, not lost

    sink.emit([])
    assert sorted(r[1] for r in _rows(warehouse)) == ["orders"] * 2 + ["spooled"] * 2
    assert list(sink.spool.iterdir()) == []


def test_an_unusable_warehouse_is_logged_and_never_raised(tmp_path: Path, caplog: Any) -> None:
    (tmp_path / "not-a-folder").write_text("a file where the warehouse's folder should be")
    sink = AuditSink(DuckDBWarehouse(tmp_path / "not-a-folder" / "w.duckdb"), spool=None)

    assert emit(_metrics(1), [sink]) == ["audit"]
    assert "2 metric(s) of feed orders not sent to audit" in caplog.text
