"""Warehouses: one interface over DuckDB (embedded default), PostgreSQL and Redshift."""

from __future__ import annotations

from pathlib import Path

from feedline.errors import TerminalError
from feedline.warehouse.base import LoadOutcome, Tx, Warehouse

__all__ = ["LoadOutcome", "Tx", "Warehouse", "connect_warehouse"]

POSTGRES_SCHEMES = ("postgresql", "postgres")
REDSHIFT_SCHEMES = ("redshift", "redshift+postgresql")


def connect_warehouse(target: str, *, read_only: bool = False, lock_timeout: float = 60) -> Warehouse:
    """The warehouse a target string names: a DuckDB file path or duckdb:///path (relative; duckdb:////abs
    for an absolute path), postgresql://… (PostgreSQL), or redshift://… (Redshift; the IAM role for COPY
    in ?iam_role= or FEEDLINE_REDSHIFT_IAM_ROLE). `read_only` for status queries. Credentials belong in
    the target string, which comes from the environment or an Airflow connection, never from code."""
    text = target.strip()
    scheme = text.split("://", 1)[0].lower() if "://" in text else ""
    if scheme in POSTGRES_SCHEMES:
        from feedline.warehouse.postgres import PostgresWarehouse

        return PostgresWarehouse(text, read_only=read_only, lock_timeout=lock_timeout)
    if scheme in REDSHIFT_SCHEMES:
        from feedline.warehouse.redshift import RedshiftWarehouse

        return RedshiftWarehouse.from_url(text, read_only=read_only)
    if scheme not in ("", "duckdb", "file"):
        raise TerminalError(
            f"warehouse target {scheme}://…: unknown scheme {scheme!r}; use a DuckDB file path, "
            "duckdb:///path, postgresql://… or redshift://…"
        )
    path = text.split("://", 1)[1] if scheme else text
    if scheme == "duckdb":
        path = path.removeprefix("/")
    if not path:
        raise TerminalError(f"warehouse target {text!r} names no file; use e.g. data/warehouse.duckdb")
    from feedline.warehouse.duckdb import DuckDBWarehouse

    return DuckDBWarehouse(Path(path), read_only=read_only, lock_timeout=lock_timeout)
