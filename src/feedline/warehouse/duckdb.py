"""The embedded DuckDB warehouse: one short-lived connection per operation, lock conflicts retried."""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

from feedline.errors import FeedlineError, TerminalError, TransientError
from feedline.warehouse.base import Tx, Warehouse
from feedline.warehouse.dialect import (
    FILE_ID_COLUMN,
    LOADED_AT_COLUMN,
    ROW_ORDER,
    ColumnDef,
    Dialect,
    TableRef,
)

log = logging.getLogger(__name__)

# Driver errors caused by the data or the configuration: retrying cannot help.
_TERMINAL_ERRORS = (
    "BinderException", "CatalogException", "ConstraintException", "ConversionException", "DataError",
    "DependencyException", "IntegrityError", "InvalidInputException", "InvalidTypeException",
    "NotImplementedException", "OutOfRangeException", "ParserException", "PermissionException",
    "ProgrammingError", "SequenceException", "SyntaxException", "TypeMismatchException",
)  # fmt: skip
_BUSY_MARKERS = ("could not set lock on file", "conflicting lock", "different configuration")


class DuckDBDialect(Dialect):
    name: ClassVar[str] = "duckdb"
    param: ClassVar[str] = "?"
    default_schema: ClassVar[str] = "main"
    types = {**Dialect.types, "float": "DOUBLE"}
    # A temporary table lives in memory (spilling if needed) and dies with the connection: ~4x faster
    # to fill than a persistent one, and never left behind by a crash.
    staging_schema: ClassVar[str] = "temp"
    temporary_staging: ClassVar[bool] = True

    def fill_from_parquet(self, staging: TableRef, columns: list[str], *, row_order: bool = True) -> str:
        """Copy a Parquet file's `columns` into staging, with `row_order` numbering rows in file order;
        params: path."""
        if not row_order:
            cols = self.columns(columns)
            return f"INSERT INTO {self.table(staging)} ({cols}) SELECT {cols} FROM read_parquet({self.param})"
        return (
            f"INSERT INTO {self.table(staging)} ({self.columns([*columns, ROW_ORDER])}) "
            f"SELECT {self.columns(columns)}, file_row_number "
            f"FROM read_parquet({self.param}, file_row_number = true)"
        )

    def insert_from_parquet(self, target: TableRef, columns: list[str]) -> str:
        """Insert a Parquet file's contract columns plus the lineage; params: file_id, loaded_at, path."""
        cols, lineage = self.columns(columns), self.columns([FILE_ID_COLUMN, LOADED_AT_COLUMN])
        return (
            f"INSERT INTO {self.table(target)} ({cols}, {lineage}) "
            f"SELECT {cols}, {self.param}, {self.param} FROM read_parquet({self.param})"
        )


def _is_busy(exc: BaseException) -> bool:
    text = str(exc).lower()
    return any(marker in text for marker in _BUSY_MARKERS)


class DuckDBWarehouse(Warehouse):
    """A DuckDB file. DuckDB admits one writing process at a time, so the file is opened only for the
    length of one operation and a lock held by another process is waited for, up to `lock_timeout`."""

    dialect = DuckDBDialect()

    def __init__(self, path: str | Path, *, lock_timeout: float = 60, read_only: bool = False) -> None:
        self.path = Path(path)
        if str(path) == ":memory:":
            raise TerminalError(
                "DuckDB ':memory:' cannot be shared between tasks; give the warehouse a file path"
            )
        self.lock_timeout = lock_timeout
        self.read_only = read_only

    def __repr__(self) -> str:
        return f"DuckDBWarehouse({str(self.path)!r}{', read_only=True' if self.read_only else ''})"

    def _connect(self) -> Any:
        import duckdb

        if self.read_only and not self.path.exists():
            raise TerminalError(
                f"{self.path}: no DuckDB warehouse there yet (nothing loaded, or a wrong path)"
            )
        if not self.read_only:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        deadline = time.monotonic() + self.lock_timeout
        delay, waited = 0.02, False
        while True:
            try:
                conn = duckdb.connect(str(self.path), read_only=self.read_only)
            except duckdb.Error as exc:
                if not _is_busy(exc):
                    raise self.translate_error(exc) from exc
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TransientError(
                        f"{self.path}: another process holds the DuckDB write lock; gave up after "
                        f"{self.lock_timeout:g}s. DuckDB allows one writing process at a time: serialize "
                        f"warehouse writes (e.g. an Airflow pool with one slot). ({exc})"
                    ) from exc
                if not waited:
                    log.info("Waiting up to %gs for the DuckDB lock on %s", self.lock_timeout, self.path)
                    waited = True
                time.sleep(min(remaining, delay * random.uniform(0.5, 1.5)))  # noqa: S311 - jitter, not crypto
                delay = min(delay * 2, 0.5)
            else:
                if waited:
                    log.info("Got the DuckDB lock on %s", self.path)
                return conn

    session_excludes_others: ClassVar[bool] = True

    def _begin(self, conn: Any) -> None:
        conn.begin()

    def _cursor(self, conn: Any) -> Any:
        return conn  # a DuckDB cursor() would be a second connection with its own transaction

    def _fill_staging(
        self,
        tx: Tx,
        columns: Sequence[ColumnDef],
        staging: TableRef,
        parquet: Path,
        clean_uri: str,
        *,
        row_order: bool = True,
    ) -> None:
        sql = self.dialect.fill_from_parquet(staging, [c.name for c in columns], row_order=row_order)
        tx.execute(sql, [str(parquet)])

    bulk_publish: ClassVar[bool] = True

    def _insert_direct(
        self, tx: Tx, columns: Sequence[ColumnDef], target: TableRef, parquet: Path, lineage: list[Any]
    ) -> int:
        tx.execute(
            self.dialect.insert_from_parquet(target, [c.name for c in columns]), [*lineage, str(parquet)]
        )
        return int(tx.fetchone()[0])  # type: ignore[index]

    def translate_error(self, exc: BaseException) -> BaseException:
        import duckdb

        if isinstance(exc, FeedlineError) or not isinstance(exc, duckdb.Error):
            return exc
        detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        if _is_busy(exc):
            return TransientError(f"{self.path}: another process holds the DuckDB lock ({detail})")
        terminal = tuple(getattr(duckdb, name) for name in _TERMINAL_ERRORS if hasattr(duckdb, name))
        if isinstance(exc, terminal):
            return TerminalError(f"DuckDB {self.path}: {detail}")
        return TransientError(f"DuckDB {self.path}: {detail}")
