"""The file ledger: one row per (feed, key, content identity, size), kept in the warehouse's audit schema."""

from __future__ import annotations

import dataclasses
import hashlib
import logging
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from feedline.contract import ColumnType
from feedline.errors import TerminalError

if TYPE_CHECKING:
    from feedline.storage.base import ObjectInfo
    from feedline.warehouse.base import Tx, Warehouse

log = logging.getLogger(__name__)

AUDIT_SCHEMA = "feedline_audit"
LEDGER_TABLE = "files"
METRIC_FIELDS = frozenset(
    ("rows_in", "rows_loaded", "rows_rejected", "duplicates", "clean_uri", "rejected_uri")
)
_CHUNK = 200
_MAX_ERROR_CHARS = 16_000  # at most 4 bytes a character: within Redshift's VARCHAR(65535)


class FileState(StrEnum):
    detected = "detected"
    transforming = "transforming"
    transformed = "transformed"
    loading = "loading"
    loaded = "loaded"
    quarantined = "quarantined"
    failed = "failed"


TERMINAL = frozenset({FileState.loaded, FileState.quarantined, FileState.failed})
_LEAVE_TERMINAL = frozenset({FileState.detected, FileState.quarantined, FileState.failed})
#: Marks a worker makes on its way to `loaded`; on a file another run loaded meanwhile they are no-ops.
IN_FLIGHT = frozenset({FileState.transforming, FileState.transformed, FileState.loading})


@dataclass(frozen=True)
class LedgerEntry:
    """One file version as the ledger knows it; timestamps are timezone-aware UTC."""

    file_id: str
    feed: str
    key: str
    identity: str
    size: int
    version: int
    state: FileState
    detected_at: datetime
    updated_at: datetime
    loaded_at: datetime | None = None
    attempts: int = 0
    rows_in: int | None = None
    rows_loaded: int | None = None
    rows_rejected: int | None = None
    duplicates: int | None = None
    error: str | None = None
    clean_uri: str | None = None
    rejected_uri: str | None = None

    def ref(self) -> dict[str, Any]:
        """A small JSON-able reference passed between tasks (XCom)."""
        return {name: getattr(self, name) for name in REF_FIELDS}

    @property
    def terminal(self) -> bool:
        return self.state in TERMINAL

    def why(self) -> str:
        """Why the file is where it is, in one sentence a person can act on."""
        since = self.updated_at.strftime("%Y-%m-%d %H:%M:%S UTC")
        counts = (
            f"{self.rows_loaded or 0} of {self.rows_in or 0} rows loaded, "
            f"{self.rows_rejected or 0} rejected, {self.duplicates or 0} duplicates dropped"
        )
        if self.state is FileState.loaded:
            return f"loaded at {since}: {counts}"
        if self.state is FileState.quarantined:
            return f"quarantined at {since}: {self.error or 'no reason recorded'}"
        if self.state is FileState.failed:
            return f"failed at {since} after {self.attempts} attempt(s): {self.error or 'no error recorded'}"
        if self.state is FileState.detected:
            return f"waiting since {since} for the feed's next run"
        return (
            f"{self.state} since {since} (attempt {self.attempts}); a run is on it or the next run resumes it"
        )


@dataclass
class Registration:
    """What `register` found: files seen for the first time, and files the ledger already had."""

    new: list[LedgerEntry] = field(default_factory=list)
    known: list[LedgerEntry] = field(default_factory=list)


COLUMNS: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(LedgerEntry))
_SQL_TYPES = (
    dict.fromkeys(("size", "rows_in", "rows_loaded", "rows_rejected", "duplicates"), "bigint")
    | dict.fromkeys(("version", "attempts"), "int")
    | dict.fromkeys(("detected_at", "updated_at", "loaded_at"), "timestamp")
)
_NULLABLE = frozenset(f.name for f in dataclasses.fields(LedgerEntry) if f.default is None)
REF_FIELDS = ("file_id", "feed", "key", "identity", "size", "version")
SUMMARY_FIELDS = ("feed", "state", "files", "rows_in", "rows_loaded", "rows_rejected")


def file_id_of(feed: str, key: str, identity: str, size: int) -> str:
    """The stable id of one file version: 32 hex digits of sha256(feed NUL key NUL identity NUL size)."""
    return hashlib.sha256(f"{feed}\0{key}\0{identity}\0{size}".encode()).hexdigest()[:32]


def check_transition(entry: LedgerEntry, state: FileState) -> None:
    """`loaded` is final; quarantined/failed files move only to detected (a replay) or between themselves.

    A loaded file accepts the in-flight marks (`mark` leaves it unchanged): two runs may work on the same
    file at once, and the one that loses the race must not fail, nor quarantine a loaded file."""
    if entry.state is FileState.loaded:
        if state is not FileState.loaded and state not in IN_FLIGHT:
            raise TerminalError(f"file {entry.file_id} ({entry.key}) is loaded; it cannot become {state}")
    elif entry.state in TERMINAL and state not in _LEAVE_TERMINAL:
        raise TerminalError(
            f"file {entry.file_id} ({entry.key}) is {entry.state}; replay it (mark detected) before {state}"
        )


class Ledger:
    """Reads and writes the ledger through a warehouse; `tx=` joins a transaction the caller holds."""

    def __init__(self, warehouse: Warehouse) -> None:
        from feedline.warehouse.dialect import ColumnDef, TableRef

        self.warehouse = warehouse
        d = self.dialect = warehouse.dialect
        self.table_ref = TableRef(AUDIT_SCHEMA, LEDGER_TABLE)
        self._table = d.table(self.table_ref)
        self._cols = d.columns(COLUMNS)
        self._oldest_first = d.columns(["detected_at", "key", "version"])
        self._defs = [ColumnDef(c, ColumnType(_SQL_TYPES.get(c, "string")), c in _NULLABLE) for c in COLUMNS]

    @contextmanager
    def _tx(self, tx: Tx | None) -> Iterator[Tx]:
        if tx is not None:
            yield tx
        else:
            with self.warehouse.transaction() as own:
                yield own

    def ensure(self) -> None:
        """Create the audit schema, the ledger table and the batch checks' results table (and, where the
        backend has indexes, the index the sweep reads by) if they do not exist."""
        from feedline.quality.checks import RESULT_COLUMNS, RESULTS_REF

        def create(tx: Tx) -> None:
            tx.execute(self.dialect.create_schema(AUDIT_SCHEMA))
            tx.execute(self.dialect.create_table(self.table_ref, self._defs, primary_key=["file_id"]))
            tx.execute(self.dialect.create_table(RESULTS_REF, RESULT_COLUMNS))
            if self.dialect.ledger_index:
                name = f"{LEDGER_TABLE}_feed_state"
                tx.execute(self.dialect.create_index(name, self.table_ref, ["feed", "state"]))

        self.warehouse.create_if_missing(create)

    def _select(self, where: str = "", order: str = "") -> str:
        sql = f"SELECT {self._cols} FROM {self._table}"
        return sql + (f" WHERE {where}" if where else "") + (f" ORDER BY {order}" if order else "")

    def register(self, feed: str, objects: Iterable[ObjectInfo]) -> Registration:
        """Record objects seen in a feed's source. The same content again is `known` (a no-op); new
        content under a known key is a new row with the next version.

        Safe when processes register the same file at once: the file gets one row, `new` to one of them
        and `known` to the others (ON CONFLICT DO NOTHING, or a table lock where there is none)."""
        d = self.dialect
        q, p = d.quote, d.param
        wanted: dict[str, ObjectInfo] = {}
        for obj in sorted(objects, key=lambda o: (o.mtime, o.key)):
            wanted.setdefault(file_id_of(feed, obj.key, obj.identity, obj.size), obj)
        result, now = Registration(), datetime.now(UTC)
        with self.warehouse.transaction() as tx:
            if d.locks_tables:
                tx.execute(d.lock_table(self.table_ref))
            keys = sorted({o.key for o in wanted.values()})
            existing: dict[str, LedgerEntry] = {}
            for start in range(0, len(keys), _CHUNK):
                chunk = keys[start : start + _CHUNK]
                tx.execute(
                    self._select(f"{q('feed')} = {p} AND {q('key')} IN ({d.params(len(chunk))})"),
                    [feed, *chunk],
                )
                existing.update((e.file_id, e) for e in map(_entry, tx.fetchall()))
            versions: dict[str, int] = {}
            for entry in existing.values():
                versions[entry.key] = max(versions.get(entry.key, 0), entry.version)
            for file_id, obj in wanted.items():
                if file_id in existing:
                    result.known.append(existing[file_id])
                    continue
                versions[obj.key] = versions.get(obj.key, 0) + 1
                version = versions[obj.key]
                entry = LedgerEntry(
                    file_id, feed, obj.key, obj.identity, obj.size, version, FileState.detected, now, now
                )
                result.new.append(entry)
            inserted: set[str] = set()
            for start in range(0, len(result.new), _CHUNK):
                chunk_entries = result.new[start : start + _CHUNK]
                tx.execute(
                    d.insert_rows(self.table_ref, COLUMNS, len(chunk_entries), "file_id"),
                    [value for e in chunk_entries for value in _row(e)],
                )
                if d.on_conflict:
                    inserted.update(str(row[0]) for row in tx.fetchall())
                else:
                    inserted.update(e.file_id for e in chunk_entries)
            raced = [e.file_id for e in result.new if e.file_id not in inserted]
            if raced:  # registered by another process since our SELECT: theirs is the row
                result.new = [e for e in result.new if e.file_id in inserted]
                for start in range(0, len(raced), _CHUNK):
                    ids = raced[start : start + _CHUNK]
                    tx.execute(self._select(f"{q('file_id')} IN ({d.params(len(ids))})"), ids)
                    result.known.extend(map(_entry, tx.fetchall()))
        if result.new:
            log.info("Registered %d new file(s) of feed %s", len(result.new), feed)
        return result

    def pending(self, feed: str, limit: int = 500) -> list[LedgerEntry]:
        """Files of a feed not yet in a terminal state, oldest first: what a run sweeps."""
        q, p = self.dialect.quote, self.dialect.param
        terminal = self.dialect.params(len(TERMINAL))
        sql = (
            self._select(f"{q('feed')} = {p} AND {q('state')} NOT IN ({terminal})", self._oldest_first)
            + f" LIMIT {int(limit)}"
        )
        with self._tx(None) as tx:
            tx.execute(sql, [feed, *sorted(TERMINAL)])
            return [_entry(row) for row in tx.fetchall()]

    def get(self, file_id: str, *, tx: Tx | None = None, lock: bool = False) -> LedgerEntry | None:
        """One entry by id; `lock=True` locks the row for the rest of `tx` where the backend can."""
        d = self.dialect
        sql = self._select(f"{d.quote('file_id')} = {d.param}")
        with self._tx(tx) as t:
            if lock and d.locks_tables:
                t.execute(d.lock_table(self.table_ref))
            t.execute(sql + (d.for_update if lock else ""), [file_id])
            row = t.fetchone()
        return None if row is None else _entry(row)

    def mark(
        self, file_id: str, state: FileState, *, error: str | None = None, tx: Tx | None = None, **fields: Any
    ) -> LedgerEntry:
        """Move a file to `state`, recording metrics (rows_in, rows_loaded, rows_rejected, duplicates,
        clean_uri, rejected_uri) and an error. `transforming` counts an attempt; `loaded` is final
        (re-marking it `loaded`, or a late in-flight mark, returns it unchanged)."""
        unknown = set(fields) - METRIC_FIELDS
        if unknown:
            raise TypeError(f"mark() got unknown field(s) {', '.join(sorted(unknown))}")
        state = FileState(state)
        with self._tx(tx) as t:
            entry = self.get(file_id, tx=t, lock=True)
            if entry is None:
                raise TerminalError(f"file {file_id} is not in the ledger")
            check_transition(entry, state)
            if entry.state is FileState.loaded:
                if state is not FileState.loaded:
                    log.info(
                        "File %s (%s) is already loaded; ignoring the late %s mark", file_id, entry.key, state
                    )
                return entry
            now = utcnow()
            changes: dict[str, Any] = {"state": str(state), "updated_at": now, **fields}
            if state is FileState.transforming:
                changes["attempts"] = entry.attempts + 1
            if state is FileState.loaded:
                changes["loaded_at"] = now
            if error is not None or state in (FileState.detected, FileState.loaded):
                changes["error"] = _clip(error)
            q, p = self.dialect.quote, self.dialect.param
            assignments = ", ".join(f"{q(name)} = {p}" for name in changes)
            t.execute(
                f"UPDATE {self._table} SET {assignments} WHERE {q('file_id')} = {p}",
                [*changes.values(), file_id],
            )
            updated = self.get(file_id, tx=t)
        assert updated is not None
        log.debug("Ledger %s: %s -> %s", file_id, entry.state, state)
        return updated

    def entries(
        self, feed: str | None = None, states: Iterable[FileState] | None = None
    ) -> list[LedgerEntry]:
        """Entries filtered by feed and/or states, by feed then oldest first."""
        q, p = self.dialect.quote, self.dialect.param
        where, params = [], []
        if feed is not None:
            where.append(f"{q('feed')} = {p}")
            params.append(feed)
        if states is not None:
            wanted = sorted({str(FileState(s)) for s in states})
            if not wanted:
                return []
            where.append(f"{q('state')} IN ({self.dialect.params(len(wanted))})")
            params.extend(wanted)
        sql = self._select(" AND ".join(where), f"{q('feed')}, {self._oldest_first}")
        with self._tx(None) as tx:
            tx.execute(sql, params)
            return [_entry(row) for row in tx.fetchall()]

    def summary(self) -> list[dict[str, Any]]:
        """Per feed and state: files, rows in/loaded/rejected and the most recent error."""
        q = self.dialect.quote
        feed, state, error, updated = q("feed"), q("state"), q("error"), q("updated_at")
        sums = ", ".join(f"COALESCE(SUM({q(c)}), 0)" for c in ("rows_in", "rows_loaded", "rows_rejected"))
        totals = f"SELECT {feed}, {state}, COUNT(*), {sums} FROM {self._table} GROUP BY {feed}, {state}"
        last = (
            f"SELECT {feed}, {state}, {error} FROM (SELECT {feed}, {state}, {error}, ROW_NUMBER() OVER "
            f"(PARTITION BY {feed}, {state} ORDER BY {updated} DESC) AS rn FROM {self._table} "
            f"WHERE {error} IS NOT NULL) AS errors WHERE rn = 1"
        )
        with self._tx(None) as tx:
            tx.execute(totals)
            rows = tx.fetchall()
            tx.execute(last)
            errors = {(r[0], r[1]): r[2] for r in tx.fetchall()}
        order = list(FileState)
        rows.sort(key=lambda r: (r[0], order.index(FileState(r[1]))))
        return [
            {
                **dict(zip(SUMMARY_FIELDS, (*r[:2], *map(int, r[2:])), strict=True)),
                "last_error": errors.get(r[:2]),
            }
            for r in rows
        ]


def _clip(error: str | None) -> str | None:
    """Keep an error message within every backend's VARCHAR (Redshift's is 65535 bytes)."""
    if error is None or len(error) <= _MAX_ERROR_CHARS:
        return error
    return error[: _MAX_ERROR_CHARS - 20] + " … (message cut)"


def utcnow() -> datetime:
    """Now in UTC as a naive timestamp: every backend stores plain TIMESTAMP, read back as UTC."""
    return datetime.now(UTC).replace(tzinfo=None)


def _aware(value: datetime | None) -> datetime | None:
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=UTC)


def _naive(value: datetime | None) -> datetime | None:
    return None if value is None else value.astimezone(UTC).replace(tzinfo=None)


def _row(entry: LedgerEntry) -> list[Any]:
    values = [getattr(entry, c) for c in COLUMNS]
    return [
        str(v) if isinstance(v, FileState) else _naive(v) if isinstance(v, datetime) else v for v in values
    ]


def _entry(row: tuple[Any, ...]) -> LedgerEntry:
    data = dict(zip(COLUMNS, row, strict=True))
    data["state"] = FileState(data["state"])
    for name in ("detected_at", "updated_at", "loaded_at"):
        data[name] = _aware(data[name])
    return LedgerEntry(**data)
