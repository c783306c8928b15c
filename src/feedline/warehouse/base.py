"""The warehouse interface every backend implements: transactions, tables, staging and bulk-load hooks."""

from __future__ import annotations

import abc
import logging
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from feedline.contract import ColumnType, Feed
from feedline.errors import ContractError, FeedlineError, TerminalError, TransientError
from feedline.quality.spec import SchemaPolicy
from feedline.warehouse.dialect import (
    FILE_ID_COLUMN,
    LOADED_AT_COLUMN,
    ColumnDef,
    Dialect,
    TableColumn,
    TableRef,
    check_file_id,
    widens,
)

log = logging.getLogger(__name__)
# Guards which thread holds a warehouse's session (Warehouse.session).
_SESSIONS = threading.Lock()


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

    @property
    def cursor(self) -> Any:
        """The driver's cursor, for what DB-API does not cover (PostgreSQL's COPY)."""
        return self._cursor

    def execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        log.debug("SQL %s %r", sql, params)
        try:
            if params:
                self._cursor.execute(sql, list(params))
            else:  # no placeholders to parse: a literal '%' (an S3 key) stays as it is
                self._cursor.execute(sql)
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
    def _connect(self) -> Any:
        """A new DB-API style connection (commit/rollback/close)."""

    def _begin(self, conn: Any) -> None:
        """Begin a transaction on `conn`; nothing where the driver begins one with the first statement."""
        return None

    def _open(self) -> Any:
        """A connection with a transaction begun: this thread's session's (connected again after a failed
        transaction dropped it), else a new one."""
        mine = self._holder == threading.get_ident()
        held = self._held if mine else None
        if held is not None and getattr(held, "closed", False):  # the server closed it while idle
            self._held = held = None
        conn = held if held is not None else self._connect()
        if mine:
            self._held = conn
        try:
            self._begin(conn)
        except Exception as exc:
            self._release(conn, failed=True)
            raise self.translate_error(exc) from exc
        return conn

    def _cursor(self, conn: Any) -> Any:
        """The object statements run on inside the transaction (execute/fetchone/fetchall)."""
        return conn.cursor()

    @abc.abstractmethod
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
        """Insert the clean file's `columns` (all of the contract's, or only its key) into `staging`
        (created empty with those columns), with ROW_ORDER = the row's position in the file where
        `row_order` is asked and the dialect has `staging_row_order`. The file already passed
        `check_parquet`."""

    bulk_publish: ClassVar[bool] = False

    def _insert_direct(
        self, tx: Tx, columns: Sequence[ColumnDef], target: TableRef, parquet: Path, lineage: list[Any]
    ) -> int:
        """With `bulk_publish`: bulk-insert the file's rows straight into `target` with the lineage values
        (file id, loaded at); returns the rows inserted."""
        raise NotImplementedError(f"{type(self).__name__} publishes through staging only")

    @abc.abstractmethod
    def translate_error(self, exc: BaseException) -> BaseException:
        """Map a driver error to TransientError / TerminalError; return anything else unchanged."""

    def close(self) -> None:
        """Release held resources; connections are per operation, so usually nothing to do."""
        return None

    def _release(self, conn: Any, failed: bool) -> None:
        """Done with a transaction's connection: close it unless it is the session's; a failed one is
        closed all the same, and the session's next transaction connects afresh."""
        if conn is not self._held:
            conn.close()
        elif failed:
            self._held = None
            conn.close()

    #: Whether a session shuts other processes out of the warehouse until it ends (DuckDB's file lock).
    session_excludes_others: ClassVar[bool] = False
    _held: Any = None  # the session's connection (see session())
    _holder: int | None = None  # the thread whose session it is

    @contextmanager
    def session(self) -> Iterator[None]:
        """The transactions inside, on this thread, share one connection; each still commits or rolls
        back on its own, and nested sessions join the outer one. Connecting is what a small file's
        load mostly pays for: its transform and load take eight transactions (PostgreSQL: ~7 ms to
        connect against 0.1 ms per transaction on an open connection; DuckDB: ~10 ms to open the file
        and a checkpoint to close it). DuckDB holds its write lock for the whole session
        (`session_excludes_others`): keep sessions to a few seconds. Read-only warehouses connect per
        transaction."""
        with _SESSIONS:
            if self._holder is not None or self.read_only:
                mine = False
            else:
                self._holder, mine = threading.get_ident(), True
        if not mine:
            yield
            return
        try:
            self._held = self._connect()
            yield
        finally:
            with _SESSIONS:
                conn, self._held, self._holder = self._held, None, None
            if conn is not None:
                conn.close()

    # --- transactions ----------------------------------------------------------------------------

    @contextmanager
    def transaction(self) -> Iterator[Tx]:
        """A short transaction: commit on normal exit, roll back on any exception."""
        conn = self._open()
        failed = True
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
            failed = False
        finally:
            self._release(conn, failed)

    # --- tables ----------------------------------------------------------------------------------

    def target(self, feed: Feed) -> TableRef:
        return TableRef(feed.target.schema_ or self.dialect.default_schema, feed.target.table)

    def create_if_missing(self, create: Callable[[Tx], None], attempts: int = 3) -> None:
        """Run `create` (CREATE … IF NOT EXISTS statements) in a transaction, again after a transient error:
        when sessions create the same schema or table at once, PostgreSQL fails all but one of them (a
        unique violation in its catalog), and the retry finds the objects there."""
        for attempt in range(1, attempts + 1):
            try:
                with self.transaction() as tx:
                    create(tx)
                return
            except TransientError:
                if attempt == attempts:
                    raise
                log.info("Creating tables raced with another session; trying again")

    def ensure_table(self, feed: Feed) -> None:
        """Create the feed's target table (contract columns + lineage) and its schema if missing, and
        (target.index_key) the index on its key: here, in a transaction of its own, never inside a load,
        where building it would hold the table against the feed's other loads until the load commits."""
        self.create_if_missing(lambda tx: self._ensure_table(tx, feed))
        if feed.target.index_key and self.dialect.key_index:
            self.create_if_missing(lambda tx: self._ensure_key_index(tx, feed))

    def _ensure_table(self, tx: Tx, feed: Feed, extra: Sequence[ColumnDef] = ()) -> None:
        """Create the target table if missing, or check that it has the contract's columns; under
        schema_policy evolve, bring it up to the contract and `extra` (the file's columns beyond it)."""
        if feed.schema_policy is SchemaPolicy.evolve:
            self._evolve_table(tx, feed, extra)
            return
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
        self._create_table(tx, feed, contract_columns(feed))

    def _ensure_key_index(self, tx: Tx, feed: Feed) -> None:
        """target.index_key: index the primary key unless a valid index already leads with its columns
        (feedline's, or one the table's owner made, such as a primary key constraint's). Looked up first,
        as CREATE INDEX takes a lock against the table's writers even when the index exists. PostgreSQL
        lets only the table's owner create an index: for another user this logs what to ask the owner
        for and goes on without the index (loads stay correct, small upserts scan the table)."""
        d, ref, key = self.dialect, self.target(feed), list(feed.primary_key)
        tx.execute(d.key_index_state(), [len(key), key, ref.schema, ref.name])
        row = tx.fetchone()
        if row is None or row[0]:
            return  # no table (it is created first), or the index is there
        create = d.create_index(d.key_index_name(ref, key), ref, key)
        if not row[1]:
            log.warning(
                "Feed %s: target.index_key: the warehouse user does not own %s, and only its owner can "
                "index it; small upserts scan the table until the owner runs: %s",
                feed.name, ref, create,
            )  # fmt: skip
            return
        tx.execute(create)
        log.info("Created the key index of %s (%s) for feed %s", ref, ", ".join(key), feed.name)

    def _create_table(self, tx: Tx, feed: Feed, columns: Sequence[ColumnDef]) -> None:
        """The target table: `columns`, then the lineage columns."""
        d, ref = self.dialect, self.target(feed)
        lineage = [
            ColumnDef(FILE_ID_COLUMN, ColumnType("string")),
            ColumnDef(LOADED_AT_COLUMN, ColumnType("timestamp")),
        ]
        tx.execute(d.create_schema(ref.schema))
        tx.execute(d.create_table(ref, [*columns, *lineage]))
        log.info("Created table %s for feed %s", ref, feed.name)

    def _evolve_table(self, tx: Tx, feed: Feed, extra: Sequence[ColumnDef]) -> None:
        """schema_policy evolve, in the caller's transaction: create the table with the contract's and
        the file's columns, or add those it lacks (nullable) and widen the types the contract widened.

        A type change that is not a safe widening (see `widens`) is a `ContractError` naming the table,
        the column and both types. A SQL type feedline never creates is left as it is."""
        d, ref = self.dialect, self.target(feed)
        tx.execute(d.list_column_types(), [ref.schema, ref.name])
        existing = {str(row[0]).lower(): d.table_column(row) for row in tx.fetchall()}
        wanted = [*contract_columns(feed), *extra]
        if not existing:
            self._create_table(tx, feed, wanted)
            return
        for column in wanted:
            found = existing.get(column.name.lower())
            if found is None:
                tx.execute(d.add_column(ref, column))
                log.info(
                    "Added column %s %s to %s (feed %s, schema_policy evolve)",
                    column.name, d.column_type(column.type), ref, feed.name,
                )  # fmt: skip
            elif self._must_widen(feed, found, column.type):
                self._widen(tx, feed, found, column.type)

    def _widen(self, tx: Tx, feed: Feed, found: TableColumn, wanted: ColumnType) -> None:
        """ALTER the column's type where the dialect can inside the load's transaction; otherwise say
        which statement to run by hand (Redshift lengthens a VARCHAR only outside a transaction)."""
        d, ref = self.dialect, self.target(feed)
        sql = d.alter_column_type(ref, found, wanted)
        if not d.alters_types_in_transaction:
            raise ContractError(
                f"{feed.name}: column {found.name} of {ref} is {found.sql} and the contract now says "
                f"{wanted}; {d.name} cannot change a column's type inside the load's transaction: run "
                f"`{sql}` once, then replay the file"
            )
        tx.execute(sql)
        log.info(
            "Widened column %s of %s from %s to %s (feed %s, schema_policy evolve)",
            found.name, ref, found.sql, d.column_type(wanted), feed.name,
        )  # fmt: skip

    def _must_widen(self, feed: Feed, found: TableColumn, wanted: ColumnType) -> bool:
        """Whether a table column must change type to hold the contract's; raises `ContractError` when the
        change would narrow it or is not lossless."""
        if found.type is None:
            return False
        if found.type == wanted:
            bound, limit = found.length, self.dialect.string_length
            return wanted.name == "string" and bound is not None and (limit is None or bound < limit)
        if widens(found.type, wanted):
            return True
        raise ContractError(
            f"{feed.name}: column {found.name} of {self.target(feed)} is {found.sql} and the contract now "
            f"says {wanted}, which is not a safe widening (schema_policy evolve widens int to "
            "bigint or float, decimal(p,s) to one with at least as many integer digits and decimals, and any "
            "type to string); put the contract's type back, or migrate the table's column yourself"
        )

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
        from feedline.warehouse.load import load_file

        metrics = {"rows_in": rows_in, "rows_rejected": rows_rejected, "duplicates": duplicates,
                   "clean_uri": clean_uri, "rejected_uri": rejected_uri}  # fmt: skip
        return load_file(self, feed, file_id, parquet, metrics)


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
