"""Warehouses: one interface over DuckDB (embedded default), PostgreSQL and Redshift."""

from __future__ import annotations

from pathlib import Path

from feedline.errors import TerminalError
from feedline.warehouse.base import LoadOutcome, Tx, Warehouse

__all__ = ["LoadOutcome", "TargetNotAvailableError", "Tx", "Warehouse", "connect_warehouse"]


class TargetNotAvailableError(TerminalError, NotImplementedError):
    """The warehouse target names a backend this version of feedline does not ship yet."""


def connect_warehouse(target: str, *, read_only: bool = False, lock_timeout: float = 60) -> Warehouse:
    """The warehouse a target string names: a DuckDB file path or duckdb:///path (relative; duckdb:////abs
    for an absolute path); `read_only` for status queries."""
    text = target.strip()
    scheme = text.split("://", 1)[0].lower() if "://" in text else ""
    if scheme in ("postgresql", "postgres", "redshift"):
        raise TargetNotAvailableError(
            f"warehouse {scheme}://…: the PostgreSQL/Redshift target arrives with the AWS issue; "
            "use a DuckDB file path for now"
        )
    if scheme not in ("", "duckdb", "file"):
        raise TerminalError(
            f"warehouse target {text!r}: unknown scheme {scheme!r}; use a DuckDB file path or duckdb:///path"
        )
    path = text.split("://", 1)[1] if scheme else text
    if scheme == "duckdb":
        path = path.removeprefix("/")
    if not path:
        raise TerminalError(f"warehouse target {text!r} names no file; use e.g. data/warehouse.duckdb")
    from feedline.warehouse.duckdb import DuckDBWarehouse

    return DuckDBWarehouse(Path(path), read_only=read_only, lock_timeout=lock_timeout)
