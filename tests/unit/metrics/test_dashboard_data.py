"""The dashboard's figures from a ledger and a metrics table with known times and counts."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest

from feedline.dashboard.data import dashboard_data, percentile
from feedline.ledger import Ledger, file_id_of
from feedline.metrics import Origin
from feedline.metrics.audit import AuditSink
from feedline.storage.base import ObjectInfo
from feedline.warehouse.base import Warehouse
from feedline.warehouse.duckdb import DuckDBWarehouse

NOW = datetime(2026, 3, 1, 12, 40)
LOG = "http://airflow/dags/feed_orders/runs/r1/tasks/process.transform/mapped/3?try_number=2"


def _at(hh_mm_ss: str) -> datetime:
    h, m, s = map(int, hh_mm_ss.split(":"))
    return NOW.replace(hour=h, minute=m, second=s)


def _file(warehouse: Warehouse, feed: str, key: str, state: str, detected: str, done: str | None = None,
          rows: int = 0, rejected: int = 0, error: str | None = None) -> str:  # fmt: skip
    """A ledger entry as a run would have left it, at the given times of NOW's day."""
    Ledger(warehouse).register(feed, [ObjectInfo(key, 10, 0.0, f"sha256:{key}")])
    file_id = file_id_of(feed, key, f"sha256:{key}", 10)
    updated = _at(done or detected)
    with warehouse.transaction() as tx:
        tx.execute(
            'UPDATE feedline_audit.files SET state = ?, detected_at = ?, updated_at = ?, loaded_at = ?, '
            "rows_loaded = ?, rows_rejected = ?, error = ? WHERE file_id = ?",
            [state, _at(detected), updated, updated if state == "loaded" else None, rows, rejected, error,
             file_id],
        )  # fmt: skip
    return file_id


@pytest.fixture
def warehouse(tmp_path: Path) -> Warehouse:
    warehouse = DuckDBWarehouse(tmp_path / "w.duckdb")
    Ledger(warehouse).ensure()
    _file(warehouse, "orders", "a.csv", "loaded", "11:05:00", "11:05:10", rows=100, rejected=2)
    _file(warehouse, "orders", "b.csv", "loaded", "11:20:00", "11:20:30", rows=50)
    _file(warehouse, "orders", "c.csv", "loaded", "12:10:00", "12:11:00", rows=10)
    bad = _file(warehouse, "orders", "d.csv", "quarantined", "12:15:00", error="header lacks amount")
    _file(warehouse, "orders", "old.csv", "loaded", "08:00:00", "08:00:05", rows=7)  # before the window
    _file(warehouse, "orders", "new.csv", "detected", "12:39:00")
    _file(warehouse, "secret", "s.csv", "failed", "12:00:00", error="nope")  # a feed the user may not read
    origin = Origin("orders", "feed_orders", "r1", "process.transform", 3, bad, ts=_at("12:15:00"))
    first = Origin("orders", "feed_orders", "r1", "process.transform", 3, bad, ts=_at("12:14:00"))
    AuditSink(warehouse).emit(
        [
            first.metric(
                "task.finished", 1, Task="process.transform", State="up_for_retry", log=LOG[:-1] + "1"
            ),
            origin.metric("task.finished", 1, Task="process.transform", State="failed", log=LOG),
            origin.metric("file.transform_seconds", 0.5),
            origin.metric("file.transform_seconds", 1.5),
            origin.metric("file.load_seconds", 0.2),
        ]
    )  # the later attempt's log is the one shown
    return warehouse


def test_percentiles_interpolate_between_ranks() -> None:
    assert percentile([], 50) is None
    assert percentile([7.0], 95) == 7.0
    assert percentile([30.0, 10.0, 60.0], 50) == 30.0
    assert percentile([10.0, 30.0, 60.0], 95) == pytest.approx(57.0)


def test_the_figures_of_each_readable_feed_over_the_window(warehouse: Warehouse) -> None:
    data = dashboard_data(
        warehouse, hours=3, now=NOW, known_feeds=["orders", "empty"], allowed=lambda f: f != "secret"
    )

    assert data["generated_at"] == "2026-03-01T12:40:00Z"
    assert [f["feed"] for f in data["feeds"]] == ["empty", "orders"]
    empty, orders = data["feeds"]
    assert empty["totals"]["files_loaded"] == 0 and empty["failures"] == []
    assert orders["dag_id"] == "feed_orders"
    assert orders["states"] == {
        "detected": 1, "transforming": 0, "transformed": 0, "loading": 0, "loaded": 4, "quarantined": 1,
        "failed": 0,
    }  # fmt: skip
    hourly = [(h["hour"][11:16], h["files"], h["rows_loaded"], h["latency_p50"], h["latency_p95"])
              for h in orders["hourly"]]  # fmt: skip
    assert hourly == [
        ("10:00", 0, 0, None, None),
        ("11:00", 2, 150, 20.0, pytest.approx(29.0)),
        ("12:00", 1, 10, 60.0, 60.0),
    ]
    assert orders["hourly"][0]["hour"] == "2026-03-01T10:00:00Z"
    assert orders["totals"] == {
        "files_loaded": 3,
        "rows_loaded": 160,
        "rows_rejected": 2,
        "files_finished": 4,
        "files_quarantined": 1,
        "files_failed": 0,
        "quarantine_rate": 0.25,
        "latency_p50": 30.0,
        "latency_p95": pytest.approx(57.0),
        "transform_p50": 1.0,
        "load_p50": 0.2,
    }
    assert orders["failures"] == [
        {"file_id": file_id_of("orders", "d.csv", "sha256:d.csv", 10), "key": "d.csv", "version": 1,
         "state": "quarantined", "error": "header lacks amount", "at": "2026-03-01T12:15:00Z", "log": LOG},
    ]  # fmt: skip


def test_an_empty_warehouse_shows_the_declared_feeds_without_figures(tmp_path: Path) -> None:
    warehouse = DuckDBWarehouse(tmp_path / "w.duckdb")
    data = dashboard_data(warehouse, hours=2, now=NOW, known_feeds=["orders"])
    (orders,) = data["feeds"]
    assert orders["states"]["loaded"] == 0
    assert [(h["hour"], h["rows_loaded"]) for h in orders["hourly"]] == [
        ("2026-03-01T11:00:00Z", 0),
        ("2026-03-01T12:00:00Z", 0),
    ]
    assert orders["totals"]["quarantine_rate"] is None
