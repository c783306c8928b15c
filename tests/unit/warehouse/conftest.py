"""Fixtures for warehouse tests: each backend of the matrix with the ledger created, and registered files."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from pathlib import Path

import pytest

from feedline.contract import Feed
from feedline.ledger import FileState, Ledger
from feedline.storage.base import ObjectInfo
from feedline.warehouse.base import Warehouse
from feedline.warehouse.duckdb import DuckDBWarehouse


@pytest.fixture
def warehouse(any_warehouse: Warehouse) -> Warehouse:
    Ledger(any_warehouse).ensure()
    return any_warehouse


@pytest.fixture
def duckdb_warehouse(tmp_path: Path) -> DuckDBWarehouse:
    wh = DuckDBWarehouse(tmp_path / "warehouse.duckdb", lock_timeout=10)
    Ledger(wh).ensure()
    return wh


@pytest.fixture
def register(warehouse: Warehouse) -> Callable[[Feed], str]:
    """Register a fresh file of a feed in the ledger and move it to `loading`; returns its file id."""
    counter = itertools.count(1)

    def _register(feed: Feed) -> str:
        n = next(counter)
        ledger = Ledger(warehouse)
        obj = ObjectInfo(f"file{n}.csv", 100 + n, 0.0, f"sha256:{n:064x}")
        entry = ledger.register(feed.name, [obj]).new[0]
        ledger.mark(entry.file_id, FileState.transforming)
        ledger.mark(entry.file_id, FileState.loading)
        return entry.file_id

    return _register
