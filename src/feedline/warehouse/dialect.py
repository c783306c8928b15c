"""The SQL dialect layer: identifier quoting, type mapping and every statement feedline generates."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from feedline.contract import ColumnType, check_identifier
from feedline.errors import ContractError, TerminalError

FILE_ID = re.compile(r"^[0-9a-f]{32}$")
STAGING_SCHEMA = "feedline_staging"
ROW_ORDER = "_feedline_row"
FILE_ID_COLUMN = "_feedline_file_id"
LOADED_AT_COLUMN = "_feedline_loaded_at"


def identifier(value: str, what: str = "identifier") -> str:
    """Validate an identifier, raising a `TerminalError` (bad config) instead of a bare ValueError."""
    try:
        return check_identifier(value, what)
    except ValueError as exc:
        raise TerminalError(str(exc)) from None


def check_file_id(file_id: str) -> str:
    """A ledger file id is exactly 32 lowercase hex digits; anything else never reaches SQL."""
    if not FILE_ID.match(file_id):
        raise TerminalError(f"{file_id!r} is not a ledger file id (32 lowercase hex digits)")
    return file_id


@dataclass(frozen=True)
class TableRef:
    """A schema-qualified table whose two names were validated on construction."""

    schema: str
    name: str

    def __post_init__(self) -> None:
        identifier(self.schema, "schema name")
        identifier(self.name, "table name")

    def __str__(self) -> str:
        return f"{self.schema}.{self.name}"


@dataclass(frozen=True)
class ColumnDef:
    """A column to create: name, logical type and nullability."""

    name: str
    type: ColumnType
    nullable: bool = True


@dataclass(frozen=True)
class TableColumn:
    """A column as the warehouse's catalog has it: `sql` is its type as reported (for messages), `type`
    the logical type (None for a SQL type feedline never creates), `length` a VARCHAR's declared size."""

    name: str
    sql: str
    type: ColumnType | None
    length: int | None = None


# Catalog type names (information_schema.columns.data_type, lowercased) of the types feedline creates.
_CATALOG_TYPES = {
    "integer": "int", "int4": "int", "bigint": "bigint", "int8": "bigint", "double": "float",
    "double precision": "float", "float8": "float", "boolean": "bool", "bool": "bool", "date": "date",
    "timestamp": "timestamp", "timestamp without time zone": "timestamp", "character varying": "string",
    "varchar": "string", "text": "string",
}  # fmt: skip


def widens(old: ColumnType, new: ColumnType) -> bool:
    """Whether every value of `old` is exactly a value of `new`: int to bigint or float, decimal(p,s) to
    decimal(p',s') with p'-s' >= p-s and s' >= s, anything to string. (bigint to float is not: a double
    holds integers exactly only up to 2**53.)"""
    if new.name == "string" or (old.name, new.name) in (("int", "bigint"), ("int", "float")):
        return True
    if old.name == new.name == "decimal":
        old_p, old_s, new_p, new_s = old.precision or 0, old.scale or 0, new.precision or 0, new.scale or 0
        return new_p - new_s >= old_p - old_s and new_s >= old_s
    return False


class Dialect:
    """ANSI-ish SQL shared by DuckDB, PostgreSQL and Redshift; subclasses override only what differs.

    Statements are built only from validated identifiers (always quoted) and `param` placeholders:
    no value is ever interpolated.
    """

    name: ClassVar[str] = "ansi"
    param: ClassVar[str] = "?"
    default_schema: ClassVar[str] = "public"
    # How a transaction locks a ledger row: a suffix on its SELECT, or (no row locks) LOCK of the table.
    for_update: ClassVar[str] = ""
    locks_tables: ClassVar[bool] = False
    # INSERT … ON CONFLICT DO NOTHING RETURNING: concurrent registrations of one file keep one row.
    on_conflict: ClassVar[bool] = True
    ledger_index: ClassVar[bool] = False
    staging_schema: ClassVar[str] = STAGING_SCHEMA
    temporary_staging: ClassVar[bool] = False
    unlogged_staging: ClassVar[bool] = False
    # Whether staging numbers rows in file order (ROW_ORDER), so that the dedupe keeps the last row of a
    # key; without it the dedupe keeps one row per key (see RedshiftDialect).
    staging_row_order: ClassVar[bool] = True
    types: ClassVar[Mapping[str, str]] = {
        "string": "VARCHAR",
        "int": "INTEGER",
        "bigint": "BIGINT",
        "float": "DOUBLE PRECISION",
        "bool": "BOOLEAN",
        "date": "DATE",
        "timestamp": "TIMESTAMP",
    }

    # --- names and types -----------------------------------------------------------------------

    def quote(self, name: str, what: str = "identifier") -> str:
        return f'"{identifier(name, what)}"'

    def table(self, ref: TableRef) -> str:
        return f"{self.quote(ref.schema, 'schema name')}.{self.quote(ref.name, 'table name')}"

    def columns(self, names: Sequence[str], prefix: str = "") -> str:
        return ", ".join(f"{prefix}{self.quote(n, 'column name')}" for n in names)

    def params(self, count: int) -> str:
        return ", ".join([self.param] * count)

    def column_type(self, type_: ColumnType) -> str:
        if type_.name == "decimal":
            return f"DECIMAL({int(type_.precision or 18)},{int(type_.scale or 0)})"
        try:
            return self.types[type_.name]
        except KeyError:
            raise TerminalError(f"{self.name}: no SQL type for column type {type_}") from None

    # Whether `target.index_key` creates an index on the target's primary key (PostgreSQL only).
    key_index: ClassVar[bool] = False

    def key_index_name(self, table: TableRef, key: Sequence[str]) -> str:
        """The name of the target's key index, at most 63 characters: <table>_feedline_key_<hash of the
        key's columns>, so that a changed key gets an index of its own."""
        stem = identifier(table.name, "table name")
        if len(stem) > 40:
            stem = f"{stem[:31]}_{hashlib.sha256(stem.encode()).hexdigest()[:8]}"
        columns = hashlib.sha256(",".join(key).encode()).hexdigest()[:8]
        return f"{stem}_feedline_key_{columns}"

    def analyze(self, ref: TableRef) -> str:
        """Refresh the table's statistics for the planner."""
        return f"ANALYZE {self.table(ref)}"

    def key_index_state(self) -> str:
        """For the table named by the last two params (schema, table): one row (whether a valid index
        leads with the key, whose length and columns are the first two params; whether the user may
        create one), or none without the table."""
        raise NotImplementedError(f"{self.name} has no key index")

    def staging_table(self, feed: str, file_id: str) -> TableRef:
        """One staging table per (feed, file), at most 63 characters: stg_<feed>_<file_id>."""
        stem = identifier(feed, "feed name")
        if len(stem) > 26:
            stem = f"{stem[:17]}_{hashlib.sha256(stem.encode()).hexdigest()[:8]}"
        return TableRef(self.staging_schema, f"stg_{stem}_{check_file_id(file_id)}")

    # --- DDL -----------------------------------------------------------------------------------

    def create_schema(self, schema: str) -> str:
        return f"CREATE SCHEMA IF NOT EXISTS {self.quote(schema, 'schema name')}"

    def create_table(
        self, ref: TableRef, columns: Sequence[ColumnDef], primary_key: Sequence[str] = ()
    ) -> str:
        parts = [
            f"{self.quote(c.name, 'column name')} {self.column_type(c.type)}"
            + ("" if c.nullable else " NOT NULL")
            for c in columns
        ]
        if primary_key:
            parts.append(f"PRIMARY KEY ({self.columns(primary_key)})")
        return f"CREATE TABLE IF NOT EXISTS {self.table(ref)} ({', '.join(parts)})"

    def column_def(self, column: ColumnDef) -> str:
        null = "" if column.nullable else " NOT NULL"
        return f"{self.quote(column.name, 'column name')} {self.column_type(column.type)}{null}"

    def create_staging(self, ref: TableRef, columns: Sequence[ColumnDef], *, row_order: bool = True) -> str:
        """The staging table: `columns` plus, with `row_order` where the dialect numbers staged rows,
        ROW_ORDER, the row's position in its file."""
        kind = (
            "TEMPORARY TABLE"
            if self.temporary_staging
            else "UNLOGGED TABLE"
            if self.unlogged_staging
            else "TABLE"
        )
        defs = [*columns]
        if row_order and self.staging_row_order:
            defs.append(ColumnDef(ROW_ORDER, ColumnType("bigint"), nullable=False))
        return f"CREATE {kind} {self.table(ref)} ({', '.join(self.column_def(c) for c in defs)})"

    def create_index(self, name: str, ref: TableRef, columns: Sequence[str]) -> str:
        return (
            f"CREATE INDEX IF NOT EXISTS {self.quote(name, 'index name')} "
            f"ON {self.table(ref)} ({self.columns(columns)})"
        )

    def lock_table(self, ref: TableRef) -> str:
        """Lock a whole table until the transaction ends (for backends without row locks)."""
        return f"LOCK TABLE {self.table(ref)} IN EXCLUSIVE MODE"

    def drop_table(self, ref: TableRef) -> str:
        return f"DROP TABLE IF EXISTS {self.table(ref)}"

    def list_tables(self) -> str:
        """Table names of one schema; params: schema."""
        return f"SELECT table_name FROM information_schema.tables WHERE table_schema = {self.param}"

    def list_columns(self) -> str:
        """Column names of one table; params: schema, table."""
        return (
            "SELECT column_name FROM information_schema.columns "
            f"WHERE table_schema = {self.param} AND table_name = {self.param}"
        )

    # --- schema evolution ------------------------------------------------------------------------

    # What ALTER TABLE can do: ADD COLUMN IF NOT EXISTS; change any type, or only lengthen a VARCHAR
    # (Redshift); and whether ALTER COLUMN … TYPE may run inside the load's transaction (not on Redshift).
    add_column_if_not_exists: ClassVar[bool] = True
    alters_only_varchar_length: ClassVar[bool] = False
    alters_types_in_transaction: ClassVar[bool] = True

    def list_column_types(self) -> str:
        """Columns of one table with their types, read by `table_column`; params: schema, table."""
        return (
            "SELECT column_name, data_type, character_maximum_length, numeric_precision, numeric_scale "
            "FROM information_schema.columns "
            f"WHERE table_schema = {self.param} AND table_name = {self.param}"
        )

    def table_column(self, row: Sequence[Any]) -> TableColumn:
        """One `list_column_types` row."""
        name, data_type, length, precision, scale = row[:5]
        sql = str(data_type).lower()
        ctype: ColumnType | None = None
        if sql.startswith(("decimal", "numeric")):
            if precision is not None:  # a bare NUMERIC has no bound: wider than any decimal(p,s)
                ctype = ColumnType("decimal", int(precision), int(scale or 0))
        elif sql in _CATALOG_TYPES:
            ctype = ColumnType(_CATALOG_TYPES[sql])
        size = None if length is None else int(length)
        shown = str(data_type)
        if size is not None:
            shown += f"({size})"
        elif ctype is not None and ctype.name == "decimal" and "(" not in shown:
            shown += f"({ctype.precision},{ctype.scale})"
        return TableColumn(str(name), shown, ctype, size)

    @property
    def string_length(self) -> int | None:
        """The declared size of the type strings are created as; None when unbounded."""
        match = re.search(r"\((\d+)\)", self.types["string"])
        return int(match.group(1)) if match else None

    def add_column(self, ref: TableRef, column: ColumnDef) -> str:
        """Add a column, always nullable: the rows already in the table have no value for it. IF NOT
        EXISTS (where the dialect has it): two loads adding the same column at once both succeed."""
        name, sql_type = self.quote(column.name, "column name"), self.column_type(column.type)
        exists = " IF NOT EXISTS" if self.add_column_if_not_exists else ""
        return f"ALTER TABLE {self.table(ref)} ADD COLUMN{exists} {name} {sql_type}"

    def alter_column_type(self, ref: TableRef, column: TableColumn, new: ColumnType) -> str:
        """Change a column's type to a wider one (see `widens`); existing values are cast. A dialect that
        only lengthens VARCHARs raises a `ContractError` saying how to migrate the column instead."""
        name = self.quote(column.name, "column name")
        if self.alters_only_varchar_length and not (column.type and column.type.name == new.name == "string"):
            raise ContractError(
                f"column {column.name} of {ref} is {column.sql} and the contract now says {new}, but "
                f"{self.name} changes a column's type in place only to lengthen a VARCHAR: add a column of "
                "the new type, copy the values into it, drop the old column and rename the new one (or "
                "recreate the table), then replay the file"
            )
        return f"ALTER TABLE {self.table(ref)} ALTER COLUMN {name} TYPE {self.column_type(new)}"

    # --- the load --------------------------------------------------------------------------------

    def count(self, ref: TableRef) -> str:
        return f"SELECT count(*) FROM {self.table(ref)}"

    def insert_rows(self, ref: TableRef, columns: Sequence[str], rows: int, conflict_key: str) -> str:
        """A multi-row INSERT; with `on_conflict`, rows whose key exists are skipped and the inserted keys
        returned. Params: the rows' values, row after row."""
        values = ", ".join([f"({self.params(len(columns))})"] * rows)
        sql = f"INSERT INTO {self.table(ref)} ({self.columns(columns)}) VALUES {values}"
        if self.on_conflict:
            key = self.quote(conflict_key, "column name")
            sql += f" ON CONFLICT ({key}) DO NOTHING RETURNING {key}"
        return sql

    def dedupe(self, staging: TableRef, key: Sequence[str], columns: Sequence[str]) -> list[str]:
        """Keep one row per key in staging: the one with the highest ROW_ORDER (the last in the file).

        Only keys that occur more than once are joined back, so a batch without duplicates (the usual
        case: the transform already keeps one row per key) costs one aggregate over the key."""
        tbl, order = self.table(staging), self.quote(ROW_ORDER)
        keys = self.columns(key)
        same = " AND ".join(f"{tbl}.{self.quote(k)} = dupes.{self.quote(k)}" for k in key)
        return [
            f"DELETE FROM {tbl} USING (SELECT {keys}, max({order}) AS keep FROM {tbl} GROUP BY {keys} "
            f"HAVING count(*) > 1) AS dupes WHERE {same} AND {tbl}.{order} < dupes.keep"
        ]

    def delete_join_guard(self, key: Sequence[ColumnDef]) -> tuple[str, str] | None:
        """Statements around an upsert's `delete_matching` that keep its join off a plan which is cheap
        to read but ruinous to delete through: (before, whose one param is the staged row count; after).
        None where the backend needs none (see PostgresDialect)."""
        return None

    def delete_matching(self, target: TableRef, staging: TableRef, key: Sequence[str]) -> str:
        """Delete the target rows whose key is in staging (the portable half of an upsert)."""
        tgt, stg = self.table(target), self.table(staging)
        same = " AND ".join(f"{tgt}.{self.quote(k)} = {stg}.{self.quote(k)}" for k in key)
        return f"DELETE FROM {tgt} USING {stg} WHERE {same}"

    def delete_all(self, target: TableRef) -> str:
        """DELETE, not TRUNCATE: TRUNCATE commits implicitly on Redshift and would break the transaction."""
        return f"DELETE FROM {self.table(target)}"

    def insert_from_staging(self, target: TableRef, staging: TableRef, columns: Sequence[str]) -> str:
        """Insert every staged row plus the lineage columns; params: file_id, loaded_at."""
        cols = self.columns(columns)
        lineage = self.columns([FILE_ID_COLUMN, LOADED_AT_COLUMN])
        return (
            f"INSERT INTO {self.table(target)} ({cols}, {lineage}) "
            f"SELECT {cols}, {self.param}, {self.param} FROM {self.table(staging)}"
        )
