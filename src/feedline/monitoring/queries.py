"""The SQL the monitoring checks read: aggregates over the ledger and the feed's table, via the dialect.

Each query reads only what its check needs (a max, a count, the rows of a time window), so a ledger
with years of files costs the monitoring one indexed scan per check on PostgreSQL, not a full read.
Times are compared as naive UTC values, the way the ledger stores them, and come back timezone-aware.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from feedline.ledger import AUDIT_SCHEMA, LEDGER_TABLE, FileState
from feedline.warehouse.dialect import FILE_ID_COLUMN, TableRef

if TYPE_CHECKING:
    from feedline.warehouse.base import Tx

LEDGER = TableRef(AUDIT_SCHEMA, LEDGER_TABLE)
FINISHED = (FileState.loaded, FileState.quarantined, FileState.failed)
_CHUNK = 200


@dataclass(frozen=True)
class Load:
    """One loaded file version: when the ledger registered it and when its rows committed."""

    key: str
    version: int
    detected_at: datetime
    loaded_at: datetime


def aware(value: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def naive(value: datetime) -> datetime:
    return value.astimezone(UTC).replace(tzinfo=None)


def ping(tx: Tx) -> None:
    tx.execute("SELECT 1")
    tx.fetchall()


def newest_load(tx: Tx, feed: str) -> datetime | None:
    """When the feed's most recent file was loaded, or None if none ever was."""
    d = tx.dialect
    q, p = d.quote, d.param
    value = tx.scalar(
        f"SELECT max({q('loaded_at')}) FROM {d.table(LEDGER)} WHERE {q('feed')} = {p} AND {q('state')} = {p}",
        [feed, str(FileState.loaded)],
    )
    return None if value is None else aware(value)


def loads_since(tx: Tx, feed: str, since: datetime) -> list[Load]:
    """The feed's files loaded at or after `since`."""
    d = tx.dialect
    q, p = d.quote, d.param
    tx.execute(
        f"SELECT {d.columns(['key', 'version', 'detected_at', 'loaded_at'])} FROM {d.table(LEDGER)} "
        f"WHERE {q('feed')} = {p} AND {q('state')} = {p} AND {q('loaded_at')} >= {p}",
        [feed, str(FileState.loaded), naive(since)],
    )
    return [Load(str(k), int(v), aware(det), aware(at)) for k, v, det, at in tx.fetchall()]


def finished_since(tx: Tx, feed: str, since: datetime) -> dict[FileState, int]:
    """Files that reached loaded, quarantined or failed at or after `since`, counted per state."""
    d = tx.dialect
    q, p = d.quote, d.param
    tx.execute(
        f"SELECT {q('state')}, count(*) FROM {d.table(LEDGER)} WHERE {q('feed')} = {p} "
        f"AND {q('state')} IN ({d.params(len(FINISHED))}) AND {q('updated_at')} >= {p} GROUP BY {q('state')}",
        [feed, *map(str, FINISHED), naive(since)],
    )
    counts = dict.fromkeys(FINISHED, 0)
    counts.update({FileState(state): int(n) for state, n in tx.fetchall()})
    return counts


def registered(tx: Tx, file_ids: Iterable[str]) -> set[str]:
    """Which of `file_ids` the ledger holds."""
    d = tx.dialect
    ids, found = sorted(set(file_ids)), set[str]()
    for start in range(0, len(ids), _CHUNK):
        chunk = ids[start : start + _CHUNK]
        tx.execute(
            f"SELECT {d.quote('file_id')} FROM {d.table(LEDGER)} "
            f"WHERE {d.quote('file_id')} IN ({d.params(len(chunk))})",
            chunk,
        )
        found.update(str(row[0]) for row in tx.fetchall())
    return found


def loaded_rows(tx: Tx, feed: str) -> dict[str, tuple[str, int]]:
    """{file_id: (key, rows_loaded)} of every loaded file of the feed."""
    d = tx.dialect
    q, p = d.quote, d.param
    tx.execute(
        f"SELECT {d.columns(['file_id', 'key', 'rows_loaded'])} FROM {d.table(LEDGER)} "
        f"WHERE {q('feed')} = {p} AND {q('state')} = {p}",
        [feed, str(FileState.loaded)],
    )
    return {str(fid): (str(key), int(rows or 0)) for fid, key, rows in tx.fetchall()}


def table_exists(tx: Tx, table: TableRef) -> bool:
    tx.execute(tx.dialect.list_columns(), [table.schema, table.name])
    return bool(tx.fetchall())


def table_rows(tx: Tx, table: TableRef) -> int:
    return int(tx.scalar(tx.dialect.count(table)))


def table_rows_by_file(tx: Tx, table: TableRef) -> dict[str, int]:
    """{file_id: rows} of the table, from its lineage column: which file each row came from."""
    d = tx.dialect
    column = d.quote(FILE_ID_COLUMN)
    tx.execute(f"SELECT {column}, count(*) FROM {d.table(table)} GROUP BY {column}")
    return {str(fid): int(n) for fid, n in tx.fetchall()}
