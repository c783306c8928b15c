"""Every warehouse backend the tests can run here: DuckDB, PostgreSQL (the local server, one fresh database
per test) and Redshift's SQL and load semantics run on PostgreSQL."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from feedline.warehouse.base import Tx, Warehouse
from feedline.warehouse.dialect import ColumnDef, TableRef
from feedline.warehouse.duckdb import DuckDBWarehouse
from feedline.warehouse.postgres import PostgresWarehouse
from feedline.warehouse.redshift import RedshiftWarehouse

BACKENDS = ("duckdb", "postgres", "redshift")
# The server the PostgreSQL cases run against; the machine's own cluster by default.
POSTGRES_URL = os.environ.get("TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
TEST_ROLE = "arn:aws:iam::123456789012:role/feedline-test"


class RedshiftOnPostgres(RedshiftWarehouse):
    """Redshift's dialect and load (LOCK, no ON CONFLICT, persistent staging without row order, the
    dedupe, the COPY row-count check) on PostgreSQL; only the COPY from S3 is replaced, by a local one."""

    def _copy_into_staging(
        self, tx: Tx, columns: Sequence[ColumnDef], staging: TableRef, parquet: Path, clean_uri: str
    ) -> None:
        self._copy(tx, columns, self.dialect.copy(staging, [c.name for c in columns]), parquet)


def postgres_unreachable() -> str | None:
    """Why the test server cannot be used, or None when it can."""
    import psycopg

    try:
        with psycopg.connect(POSTGRES_URL, connect_timeout=3) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as exc:
        first = str(exc).strip().splitlines()[0]
        return (
            f"PostgreSQL is unreachable at {POSTGRES_URL} ({first}); start it with "
            "`pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start` or set "
            "TEST_POSTGRES_URL"
        )
    return None


def database_url(name: str) -> str:
    base, _, _ = POSTGRES_URL.rpartition("/")
    return f"{base}/{name}"


@contextmanager
def fresh_database() -> Iterator[str]:
    """A new, empty database on the test server for the length of the block; dropped afterwards even if
    connections to it are left open."""
    import psycopg

    name = f"feedline_test_{uuid.uuid4().hex[:16]}"
    with psycopg.connect(POSTGRES_URL, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield database_url(name)
    finally:
        with psycopg.connect(POSTGRES_URL, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def make_warehouse(kind: str, tmp_path: Path, url: str | None = None) -> Warehouse:
    if kind == "duckdb":
        return DuckDBWarehouse(tmp_path / "warehouse.duckdb", lock_timeout=10)
    assert url is not None
    if kind == "postgres":
        return PostgresWarehouse(url, lock_timeout=10)
    if kind == "redshift":
        return RedshiftOnPostgres(url, iam_role=TEST_ROLE)
    raise ValueError(kind)
