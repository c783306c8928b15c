"""The backend matrix: `any_warehouse` is DuckDB, PostgreSQL, and Redshift-on-PostgreSQL in turn."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from feedline.warehouse.base import Warehouse
from warehouses import BACKENDS, fresh_database, make_warehouse, postgres_unreachable


@pytest.fixture(scope="session")
def postgres_available() -> None:
    """Skip (loudly, with how to fix it) when the PostgreSQL test server cannot be reached."""
    reason = postgres_unreachable()
    if reason is not None:
        pytest.skip(reason)


@pytest.fixture
def postgres_url(postgres_available: None) -> Iterator[str]:
    """A fresh database for one test, dropped after it."""
    with fresh_database() as url:
        yield url


@pytest.fixture(params=BACKENDS)
def any_warehouse(request: pytest.FixtureRequest, tmp_path: Path) -> Warehouse:
    """An empty warehouse of each backend in turn (PostgreSQL ones in a database of their own)."""
    kind = str(request.param)
    url = None if kind == "duckdb" else request.getfixturevalue("postgres_url")
    return make_warehouse(kind, tmp_path, url)
