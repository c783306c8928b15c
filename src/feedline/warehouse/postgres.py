"""The PostgreSQL warehouse on psycopg 3: rows arrive by binary COPY from Arrow, in the load's transaction."""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

from feedline.contract import ColumnType
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

# SQLSTATEs that name a bad warehouse URL, user or database: retrying cannot help.
_BAD_CONFIG = {"28000": "check the user", "28P01": "check the password", "3D000": "check the database name"}
_BAD_CONFIG_TEXT = ("password authentication failed", "does not exist", "no pg_hba.conf entry")
# duplicate_schema, duplicate_table, duplicate_object: what CREATE … IF NOT EXISTS raises when another
# session creates the same object at the same moment.
_DUPLICATE_OBJECT = frozenset({"42P06", "42P07", "42710"})
# What to do about an error caused by the data or the table (SQLSTATE → advice).
_ADVICE = {
    "22001": "a value is longer than its column allows: widen the table's column to match the contract",
    "22003": "a number does not fit its column: widen the table's column type to match the contract",
    "22008": "a date or timestamp is out of the column's range: fix the file, then replay it",
    "22021": "a text value holds bytes PostgreSQL cannot store (a NUL?): fix the file, then replay it",
    "22P02": "a value does not parse as its column's type: make the table's column types match the contract",
    "23502": "a null in a NOT NULL column: fix the file, or declare the column nullable in the contract "
    "and the table, then replay it",
    "23505": "a duplicate key in a unique index of the table: drop the index or load in upsert mode",
    "25006": "the warehouse was opened read-only",
    "42501": "grant the warehouse user the privilege it needs on the schema or table",
    "42703": "the table lacks a column the contract declares: alter the table to match the contract",
    "42P01": "a table is missing: run the feed's discover step (it creates the table) or check target.schema",
}


# A hash join's bytes per inner row beyond its key columns: tuple headers, the row's ctid (DELETE … USING
# carries it), and its bucket pointer (8 bytes per bucket, up to two buckets per row).
_HASH_ENTRY_BYTES = 56
# Bytes a key column of each type takes in a hash-join tuple; strings guessed at 32.
_KEY_WIDTH = {"int": 4, "bigint": 8, "float": 8, "bool": 1, "date": 4, "timestamp": 8, "decimal": 16}


class PostgresDialect(Dialect):
    name: ClassVar[str] = "postgresql"
    param: ClassVar[str] = "%s"
    default_schema: ClassVar[str] = "public"
    for_update: ClassVar[str] = " FOR UPDATE"
    ledger_index: ClassVar[bool] = True
    # Created and dropped inside the load's transaction, so a crash never leaves one behind; unlogged
    # (no WAL): staging is never read after a server crash.
    unlogged_staging: ClassVar[bool] = True

    def copy(self, ref: TableRef, columns: list[str], *, freeze: bool = False) -> str:
        """Binary COPY from the client; FREEZE only into a table created in the same transaction."""
        options = "FORMAT binary, FREEZE" if freeze else "FORMAT binary"
        return f"COPY {self.table(ref)} ({self.columns(columns)}) FROM STDIN ({options})"

    key_index: ClassVar[bool] = True

    def key_index_state(self) -> str:
        return (
            "SELECT EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = t.oid AND i.indisvalid AND ("
            "SELECT array_agg(a.attname::text ORDER BY k.ord) "
            "FROM unnest(i.indkey::int2[]) WITH ORDINALITY AS k(attnum, ord) "
            "JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum "
            "WHERE k.ord <= %s) = %s::text[]), "
            "pg_has_role(t.relowner, 'USAGE') "
            "FROM pg_class t JOIN pg_namespace n ON n.oid = t.relnamespace "
            "WHERE n.nspname = %s AND t.relname = %s AND t.relkind IN ('r', 'p')"
        )

    # Whether an upsert's DELETE is kept off a hash join that would spill (False on Redshift).
    guards_delete_join: ClassVar[bool] = True

    def delete_join_guard(self, key: Sequence[ColumnDef]) -> tuple[str, str] | None:
        """Forbid the hash join (SET LOCAL, this DELETE only) when the staged keys' hash table would not
        fit in one batch (work_mem times hash_mem_multiplier).

        Past that, PostgreSQL joins in batches and the DELETE sweeps the target once per batch: each
        page is dirtied, written back and, after a checkpoint, logged in full once per batch. The planner
        prices the join, not that, and picks it once the target has statistics (autovacuum analyses a
        table soon after a large load): with it, a 10 M-row full-replacement upsert took 39.8 s against
        22.6 s by merge join (docs/benchmarks.md, Loads). The merge join deletes in one pass, in key
        order. Batches that fit keep the planner's choice."""
        if not self.guards_delete_join:
            return None
        per_key = _HASH_ENTRY_BYTES + sum(_KEY_WIDTH.get(c.type.name, 32) for c in key)
        return (
            "SELECT set_config('enable_hashjoin', 'off', true) "
            f"WHERE {self.param}::bigint * {per_key} > pg_size_bytes(current_setting('work_mem')) "
            "* coalesce(current_setting('hash_mem_multiplier', true), '1')::float8",  # PostgreSQL 13+
            "SET LOCAL enable_hashjoin TO DEFAULT",
        )


class PostgresWarehouse(Warehouse):
    """A PostgreSQL database reached by a libpq URL or key=value string; one connection per transaction, or
    per `session()`.

    `lock_timeout` (seconds) bounds every wait for a lock, so a stuck competitor is a transient error,
    not a hung task; `read_only` opens read-only transactions (status queries); `work_mem` is the
    session's memory per sort or hash (at 2 M rows, 64MB kept an upsert's DELETE … USING hash join in
    memory: 3.7 s instead of 5.7 s with the 4MB default)."""

    dialect: PostgresDialect = PostgresDialect()
    kind: ClassVar[str] = "PostgreSQL"

    def __init__(
        self,
        dsn: str,
        *,
        read_only: bool = False,
        lock_timeout: float = 60,
        connect_timeout: float = 10,
        application_name: str = "feedline",
        work_mem: str | None = "64MB",
    ) -> None:
        if not dsn.strip():
            raise TerminalError(f"{self.kind}: empty connection string; set FEEDLINE_WAREHOUSE")
        self.dsn = dsn
        self.read_only = read_only
        self.lock_timeout = lock_timeout
        self.connect_timeout = connect_timeout
        self.application_name = application_name
        if work_mem is not None and not re.fullmatch(r"\d+\s*(kB|MB|GB)", work_mem):
            raise TerminalError(f"work_mem {work_mem!r}: use a size such as '64MB'")
        self.work_mem = work_mem

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.where!r}{', read_only=True' if self.read_only else ''})"

    @property
    def where(self) -> str:
        """host:port/database, without user or password: safe for messages and logs."""
        from psycopg.conninfo import conninfo_to_dict

        try:
            info = conninfo_to_dict(self._conninfo())
        except Exception:
            return "(unparsable connection string)"
        return f"{info.get('host') or 'localhost'}:{info.get('port') or 5432}/{info.get('dbname') or ''}"

    # --- connections -----------------------------------------------------------------------------

    def _conninfo(self) -> str:
        return self.dsn

    def _connect_kwargs(self) -> dict[str, Any]:
        options = [f"-c lock_timeout={max(int(self.lock_timeout * 1000), 1)}"]
        if self.work_mem is not None:  # the upsert's hash join over a batch's keys spills less
            options.append(f"-c work_mem={self.work_mem.replace(' ', '')}")
        if self.read_only:
            options.append("-c default_transaction_read_only=on")
        # No server-side prepared statements: a session's connection lives across transactions, and a
        # pooler in transaction mode (PgBouncer) would hand them to other connections.
        return {"options": " ".join(options), "prepare_threshold": None}

    def _connect(self) -> Any:
        import psycopg

        try:
            return psycopg.connect(
                self._conninfo(),
                autocommit=False,
                connect_timeout=max(int(self.connect_timeout), 1),
                application_name=self.application_name,
                **self._connect_kwargs(),
            )
        except psycopg.Error as exc:
            raise self.translate_error(exc) from exc

    # --- staging ---------------------------------------------------------------------------------

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
        names = [c.name for c in columns] + ([ROW_ORDER] if row_order else [])
        self._copy(tx, columns, self.dialect.copy(staging, names, freeze=True), parquet, row_order=row_order)

    bulk_publish: ClassVar[bool] = True

    def _insert_direct(
        self, tx: Tx, columns: Sequence[ColumnDef], target: TableRef, parquet: Path, lineage: list[Any]
    ) -> int:
        sql = self.dialect.copy(target, [*(c.name for c in columns), FILE_ID_COLUMN, LOADED_AT_COLUMN])
        constants = [(ColumnType("string"), lineage[0]), (ColumnType("timestamp"), lineage[1])]
        return self._copy(tx, columns, sql, parquet, constants=constants)

    def _copy(
        self,
        tx: Tx,
        columns: Sequence[ColumnDef],
        sql: str,
        parquet: Path,
        *,
        row_order: bool = False,
        constants: list[tuple[ColumnType, Any]] | None = None,
    ) -> int:
        """Stream the file through `sql` (a COPY … FROM STDIN) on the transaction's own connection, as
        binary COPY encoded from Arrow batches: about as fast as ADBC ingest, which would need a
        connection of its own, outside the transaction. Returns the rows copied."""
        import pyarrow as pa
        from psycopg.copy import QueuedLibpqWriter

        from feedline.warehouse.pgcopy import copy_data

        fields = [(c.name, c.type) for c in columns]
        cursor = tx.cursor
        try:
            # A writer thread sends one batch while the next is being encoded.
            with cursor.copy(sql, writer=QueuedLibpqWriter(cursor)) as copy:
                for chunk in copy_data(parquet, fields, row_order=row_order, constants=constants or ()):
                    copy.write(chunk)
        except pa.ArrowException as exc:
            raise TerminalError(f"{parquet.name}: cannot encode for COPY ({exc})") from exc
        except Exception as exc:
            raise self.translate_error(exc) from exc
        return int(cursor.rowcount)

    # --- errors ----------------------------------------------------------------------------------

    def translate_error(self, exc: BaseException) -> BaseException:
        """psycopg errors → TransientError (connection lost, server shutting down, serialization failure,
        deadlock, lock or statement timeout, out of resources) or TerminalError (the data, the table, the
        configuration), with what to do."""
        import psycopg
        from psycopg import errors as e

        if isinstance(exc, FeedlineError) or not isinstance(exc, psycopg.Error):
            return exc
        state = exc.sqlstate or ""
        detail = _detail(exc)
        prefix = f"{self.kind} {self.where}"
        if state in _BAD_CONFIG or (state == "" and any(text in detail for text in _BAD_CONFIG_TEXT)):
            advice = _BAD_CONFIG.get(state, "check the warehouse URL's host, user, password and database")
            return TerminalError(f"{prefix}: {detail}; {advice} (FEEDLINE_WAREHOUSE)")
        if self._is_transient(exc):
            return TransientError(f"{prefix}: {detail}; the transaction rolled back, retrying may succeed")
        if state in _DUPLICATE_OBJECT or (
            isinstance(exc, e.UniqueViolation) and (exc.diag.constraint_name or "").startswith("pg_")
        ):
            # Two sessions created the same schema or table at once (feedline creates them IF NOT EXISTS):
            # the retry finds it there.
            return TransientError(f"{prefix}: {detail} (a concurrent CREATE); retrying will find it")
        advice = _ADVICE.get(state, "fix the file or the table")
        if state in _ADVICE or isinstance(
            exc, (e.DataError, e.IntegrityError, e.ProgrammingError, e.NotSupportedError, e.InternalError)
        ):
            column = exc.diag.column_name
            where = f" (column {column})" if column else ""
            return TerminalError(f"{prefix}: {detail}{where}; {advice}")
        return TransientError(f"{prefix}: {detail}")

    def _is_transient(self, exc: Any) -> bool:
        from psycopg import errors as e

        state = exc.sqlstate or ""
        if state.startswith(("08", "40", "53", "57", "58")) or state in ("55P03", "55006"):
            return True  # connection, rollback (serialization, deadlock), resources, shutdown, locks
        return state == "" and isinstance(exc, (e.OperationalError, e.InterfaceError))


def _detail(exc: BaseException) -> str:
    diag = getattr(exc, "diag", None)
    text = (diag.message_primary if diag is not None else None) or str(exc).strip() or type(exc).__name__
    return text.strip().splitlines()[0]
