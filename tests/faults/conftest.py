"""Fixtures of the fault-injection suite: fresh PostgreSQL databases, projects, an S3 server that can fail."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from fault_support import Project, StoppableMotoServer, make_project

from warehouses import fresh_database, postgres_unreachable


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh database on the test server for one test; skipped, saying how to fix it, without one."""
    reason = postgres_unreachable()
    if reason is not None:
        pytest.skip(reason)
    with fresh_database() as url:
        yield url


@pytest.fixture(params=["duckdb", "postgres"])
def warehouse_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Each warehouse that runs here as its own process would reach it: a DuckDB file, then PostgreSQL."""
    if request.param == "duckdb":
        return str(tmp_path / "warehouse.duckdb")
    return str(request.getfixturevalue("postgres_url"))


@pytest.fixture
def new_project(tmp_path: Path) -> Callable[..., Project]:
    """Make a project under tmp_path: new_project(warehouse_url, **FEEDLINE_* settings)."""

    def _make(warehouse: str, **env: str) -> Project:
        return make_project(tmp_path / "project", warehouse, **env)

    return _make


@pytest.fixture(scope="module")
def s3_server() -> Iterator[StoppableMotoServer]:
    """One moto S3 server per module, reached by every boto3 client through AWS_ENDPOINT_URL."""
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one line per request otherwise
    server = StoppableMotoServer()
    server.start()
    with pytest.MonkeyPatch.context() as env:
        for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN"):
            env.delenv(name, raising=False)
        env.setenv("AWS_ACCESS_KEY_ID", "testing")
        env.setenv("AWS_SECRET_ACCESS_KEY", "testing")
        env.setenv("AWS_DEFAULT_REGION", "us-east-1")
        env.setenv("AWS_CONFIG_FILE", os.devnull)
        env.setenv("AWS_SHARED_CREDENTIALS_FILE", os.devnull)
        env.setenv("AWS_ENDPOINT_URL", server.endpoint)
        yield server
    server.stop()
