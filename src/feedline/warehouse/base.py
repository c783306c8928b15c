"""The warehouse interface and the exactly-once load every backend shares: stage, dedupe, publish, mark."""

from __future__ import annotations

import abc
import logging
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from feedline.contract import ColumnType, Feed, LoadMode
from feedline.errors import FeedlineError, TerminalError
from feedline.ledger import TERMINAL, FileState, Ledger, utcnow
from feedline.warehouse.dialect import (
    FILE_ID_COLUMN,
    LOADED_AT_COLUMN,
    ColumnDef,
    Dialect,
    TableRef,
    check_file_id,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LoadOutcome:
    """What one `load` did: rows inserted from the file, or nothing because it was already loaded."""

    rows_loaded: int
    already_loaded: bool


class Tx:
    """One open transaction: DB-API style execute / fetchone / fetchall, driver errors translated."""

    def __init__(
        self, cursor: Any, translate: Callable[[BaseException], BaseException], dialect: Dialect
    ) -> None:
        self._cursor = cursor
        self._translate = translate
        self.dialect = dialect

    def execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        log.debug("SQL %s %r", sql, params)
        try:
            self._cursor.execute(sql, list(params))
        except Exception as exc:
            raise self._translate(exc) from exc

    def fetchone(self) -> tuple[Any, ...] | None:
        try:
            row = self._cursor.fetchone()
        except Exception as exc:
            raise self._translate(exc) from exc
        return None if row is None else tuple(row)

    def fetchall(self) -> list[tuple[Any, ...]]:
        try:
            return [tuple(row) for row in self._cursor.fetchall()]
        except Exception as exc:
            raise self._translate(exc) from exc

    def scalar(self, sql: str, params: Sequence[Any] = ()) -> Any:
        """Execute and return the first column of the first row (None without rows)."""
        self.execute(sql, params)
        row = self.fetchone()
        return None if row is None else row[0]


class Warehouse(abc.ABC):
    """A SQL target holding the feeds' tables and the ledger. Backends differ only in how they connect,
    how a Parquet file reaches a staging table, and their `Dialect`."""

    dialect: Dialect
    read_only: bool = False

    # --- backend hooks ---------------------------------------------------------------------------

    @abc.abstractmethod
    def _open(self) -> Any:
        """A new DB-API style connection (commit/rollback/close) with a transaction begun."""

    def _cursor(self, conn: Any) -> Any:
        """The object statements run on inside the transaction (execute/fetchone/fetchall)."""
        return conn.cursor()

    @abc.abstractmethod
    def _fill_staging(self, tx: Tx, feed: Feed, staging: TableRef, parquet: Path, clean_uri: str) -> None:
        """Insert the clean file's rows into `staging` (created empty), with ROW_ORDER = row position."""

    @abc.abstractmethod
    def translate_error(self, exc: BaseException) -> BaseException:
        """Map a driver error to TransientError / TerminalError; return anything else unchanged."""

    def close(self) -> None:
        """Release held resources; connections are per operation, so usually nothing to do."""
        return None

    # --- transactions ----------------------------------------------------------------------------

    @contextmanager
    def transaction(self) -> Iterator[Tx]:
        """A short transaction: commit on normal exit, roll back on any exception."""
        conn = self._open()
        try:
            try:
                yield Tx(self._cursor(conn), self.translate_error, self.dialect)
            except BaseException:
                _rollback_quietly(conn)
                raise
            try:
                conn.commit()
            except Exception as exc:
                _rollback_quietly(conn)
                raise self.translate_error(exc) from exc
        finally:
            conn.close()

    # --- tables ----------------------------------------------------------------------------------

    def target(self, feed: Feed) -> TableRef:
        return TableRef(feed.target.schema_ or self.dialect.default_schema, feed.target.table)

    def ensure_table(self, feed: Feed) -> None:
        """Create the feed's target table (contract columns + lineage) and its schema if missing."""
        with self.transaction() as tx:
            self._ensure_table(tx, feed)

    def _ensure_table(self, tx: Tx, feed: Feed) -> None:
        d, ref = self.dialect, self.target(feed)
        tx.execute(d.list_columns(), [ref.schema, ref.name])
        existing = {str(row[0]).lower() for row in tx.fetchall()}
        if existing:
            missing = [c.name for c in feed.columns if c.name.lower() not in existing]
            if missing:
                raise TerminalError(
                    f"{feed.name}: table {ref} exists without column(s) {', '.join(missing)}; "
                    "alter the table to match the contract (or point target.table at a new table)"
                )
            return
        columns = [
            *contract_columns(feed),
            ColumnDef(FILE_ID_COLUMN, ColumnType("string")),
            ColumnDef(LOADED_AT_COLUMN, ColumnType("timestamp")),
        ]
        tx.execute(d.create_schema(ref.schema))
        tx.execute(d.create_table(ref, columns))
        log.info("Created table %s for feed %s", ref, feed.name)

    def count_rows(self, feed: Feed) -> int:
        with self.transaction() as tx:
            return int(tx.scalar(self.dialect.count(self.target(feed))))

    def drop_staging(self, feed: Feed, file_id: str | None = None) -> int:
        """Drop leftover staging tables of a feed (or of one file); returns how many were dropped.
        Temporary staging (DuckDB) never outlives its connection, so there is nothing to drop."""
        d = self.dialect
        prefix = d.staging_table(feed.name, "0" * 32).name[:-32]
        only = None if file_id is None else d.staging_table(feed.name, file_id).name
        with self.transaction() as tx:
            tx.execute(d.list_tables(), [d.staging_schema])
            names = [str(row[0]) for row in tx.fetchall()]
            dropped = [
                n for n in names
                if n == only or (only is None and n.startswith(prefix) and _is_file_id(n[len(prefix) :]))
            ]  # fmt: skip
            for name in dropped:
                tx.execute(d.drop_table(TableRef(d.staging_schema, name)))
        if dropped:
            log.info("Dropped %d staging table(s) of feed %s", len(dropped), feed.name)
        return len(dropped)

    # --- the exactly-once load -------------------------------------------------------------------

    def load(
        self,
        feed: Feed,
        file_id: str,
        parquet: Path,
        *,
        rows_in: int,
        rows_rejected: int,
        duplicates: int,
        clean_uri: str,
        rejected_uri: str,
    ) -> LoadOutcome:
        """Publish one clean file and mark it `loaded` in one transaction; a file already loaded is a no-op.

        Any failure rolls back the whole transaction: the target, the ledger and staging are unchanged.
        """
        d, ledger = self.dialect, Ledger(self)
        target, staging = self.target(feed), d.staging_table(feed.name, check_file_id(file_id))
        names = [c.name for c in feed.columns]
        try:
            with self.transaction() as tx:
                entry = ledger.get(file_id, tx=tx, lock=True)
                if entry is None:
                    raise TerminalError(f"file {file_id} is not in the ledger; register it before loading")
                if entry.state is FileState.loaded:
                    log.info("File %s (%s) is already loaded; nothing to do", file_id, entry.key)
                    return LoadOutcome(entry.rows_loaded or 0, already_loaded=True)
                if entry.state in TERMINAL:
                    raise TerminalError(
                        f"file {file_id} ({entry.key}) is {entry.state}; replay it before loading"
                    )
                self._ensure_table(tx, feed)
                if not d.temporary_staging:
                    tx.execute(d.create_schema(d.staging_schema))
                tx.execute(d.drop_table(staging))
                tx.execute(d.create_staging(staging, contract_columns(feed)))
                self._fill_staging(tx, feed, staging, parquet, clean_uri)
                if feed.primary_key:
                    tx.execute(d.dedupe(staging, feed.primary_key))
                rows = int(tx.scalar(d.count(staging)))
                if feed.target.mode is LoadMode.upsert:
                    tx.execute(d.delete_matching(target, staging, feed.primary_key))
                elif feed.target.mode is LoadMode.replace:
                    tx.execute(d.delete_all(target))
                tx.execute(d.insert_from_staging(target, staging, names), [file_id, utcnow()])
                tx.execute(d.drop_table(staging))
                ledger.mark(
                    file_id,
                    FileState.loaded,
                    tx=tx,
                    rows_in=rows_in,
                    rows_loaded=rows,
                    rows_rejected=rows_rejected,
                    duplicates=duplicates,
                    clean_uri=clean_uri,
                    rejected_uri=rejected_uri,
                )
        except TerminalError as exc:
            raise type(exc)(
                f"{feed.name}: loading {parquet.name} (file {file_id}) into {target}: {exc}"
            ) from exc
        log.info("Loaded %d rows of %s into %s (%s mode)", rows, parquet.name, target, feed.target.mode)
        return LoadOutcome(rows, already_loaded=False)


def contract_columns(feed: Feed) -> list[ColumnDef]:
    return [ColumnDef(c.name, c.type, c.nullable) for c in feed.columns]


def _is_file_id(text: str) -> bool:
    try:
        check_file_id(text)
    except FeedlineError:
        return False
    return True


def _rollback_quietly(conn: Any) -> None:
    try:
        conn.rollback()
    except Exception:  # the driver may already have aborted the transaction
        log.debug("Rollback failed", exc_info=True)
