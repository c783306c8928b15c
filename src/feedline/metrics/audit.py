"""The `audit` sink: metric rows in `feedline_audit.metrics`, next to the ledger in the warehouse.

DuckDB admits one writing process, and a load may hold it for a while. So the DuckDB warehouse is
opened with a short lock wait, and when another process still holds the lock the metrics go to a
spool folder beside the database file (`<warehouse>.metrics-spool/`, one JSON-lines file per batch)
instead of waiting; whichever write next gets the lock inserts the spooled batches in the same
transaction and removes their files. A task never waits long, and nothing is lost.
"""

from __future__ import annotations

import json
import logging
import os
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from feedline.contract import ColumnType
from feedline.errors import TransientError
from feedline.ledger import AUDIT_SCHEMA
from feedline.metrics.model import Metric
from feedline.warehouse.dialect import ColumnDef, TableRef

if TYPE_CHECKING:
    from feedline.warehouse.base import Tx, Warehouse

log = logging.getLogger(__name__)

METRICS_TABLE = "metrics"
METRICS_REF = TableRef(AUDIT_SCHEMA, METRICS_TABLE)
METRIC_COLUMNS: tuple[ColumnDef, ...] = (
    ColumnDef("ts", ColumnType("timestamp"), nullable=False),
    ColumnDef("feed", ColumnType("string"), nullable=False),
    ColumnDef("dag_id", ColumnType("string")),
    ColumnDef("run_id", ColumnType("string")),
    ColumnDef("task_id", ColumnType("string")),
    ColumnDef("map_index", ColumnType("int")),
    ColumnDef("file_id", ColumnType("string")),
    ColumnDef("name", ColumnType("string"), nullable=False),
    ColumnDef("value", ColumnType("float"), nullable=False),
    ColumnDef("unit", ColumnType("string"), nullable=False),
    ColumnDef("dimensions", ColumnType("string")),
)
_NAMES = tuple(c.name for c in METRIC_COLUMNS)
_CHUNK = 200
_MAX_SPOOLED_FILES = 500  # per write, so that draining a backlog keeps the transaction short


def create_metrics_table(tx: Tx) -> None:
    d = tx.dialect
    tx.execute(d.create_schema(AUDIT_SCHEMA))
    tx.execute(d.create_table(METRICS_REF, METRIC_COLUMNS))


def insert_metrics(tx: Tx, metrics: Sequence[Metric]) -> None:
    d = tx.dialect
    for start in range(0, len(metrics), _CHUNK):
        chunk = metrics[start : start + _CHUNK]
        values = ", ".join([f"({d.params(len(_NAMES))})"] * len(chunk))
        params: list[Any] = []
        for m in chunk:
            params += [m.ts, m.feed, m.dag_id, m.run_id, m.task_id, m.map_index, m.file_id]
            params += [m.name, m.value, str(m.unit), m.dimensions_json()]
        tx.execute(f"INSERT INTO {d.table(METRICS_REF)} ({d.columns(_NAMES)}) VALUES {values}", params)


def spool_folder(warehouse: Warehouse) -> Path | None:
    """Where metrics wait while another process holds a DuckDB warehouse's lock; None for servers."""
    path = getattr(warehouse, "path", None)
    return None if path is None else Path(f"{path}.metrics-spool")


class AuditSink:
    """Writes metrics to the warehouse's audit schema in one short transaction."""

    name = "audit"

    def __init__(self, warehouse: Warehouse, *, spool: Path | None = None) -> None:
        self.warehouse = warehouse
        self.spool = spool if spool is not None else spool_folder(warehouse)

    def emit(self, metrics: Sequence[Metric]) -> None:
        if not metrics and not self._waiting():
            return
        claimed: list[tuple[Path, list[Metric]]] = []
        try:
            with self.warehouse.transaction() as tx:
                claimed = self._claim()
                create_metrics_table(tx)
                insert_metrics(tx, [*(m for _, batch in claimed for m in batch), *metrics])
        except TransientError as exc:
            self._unclaim(claimed)
            if self.spool is None:
                raise
            path = self._write_spool(metrics)
            log.info(
                "feedline metrics: warehouse busy (%s); %d metric(s) spooled to %s", exc, len(metrics), path
            )
            return
        except BaseException:
            self._unclaim(claimed)
            raise
        for path, _ in claimed:
            path.unlink(missing_ok=True)
        if claimed:
            log.info("feedline metrics: inserted %d spooled batch(es) from %s", len(claimed), self.spool)

    def _waiting(self) -> list[Path]:
        return [] if self.spool is None else sorted(self.spool.glob("*.jsonl"), key=_age)

    def _write_spool(self, metrics: Sequence[Metric]) -> Path | None:
        if not metrics or self.spool is None:
            return None
        self.spool.mkdir(parents=True, exist_ok=True)
        name = f"{uuid.uuid1().hex}-{os.getpid()}.jsonl"
        partial = self.spool / f".{name}.part"
        partial.write_text("".join(json.dumps(m.to_json()) + "\n" for m in metrics), encoding="utf-8")
        os.replace(partial, self.spool / name)
        return self.spool / name

    def _claim(self) -> list[tuple[Path, list[Metric]]]:
        """Take the spooled batches, oldest first, renaming each to `.claimed`: called while holding
        DuckDB's write lock, so no other process can take the same batch. An unreadable file is set
        aside as `.bad`."""
        batches: list[tuple[Path, list[Metric]]] = []
        for path in self._waiting()[:_MAX_SPOOLED_FILES]:
            claimed = path.with_name(f"{path.name}.claimed")
            try:
                path.rename(claimed)
                lines = claimed.read_text(encoding="utf-8").splitlines()
                batches.append((claimed, [Metric.from_json(json.loads(line)) for line in lines if line]))
            except FileNotFoundError:
                continue
            except (ValueError, KeyError, TypeError) as exc:
                log.warning("feedline metrics: %s is not a metrics batch (%s); renamed to .bad", path, exc)
                claimed.rename(path.with_suffix(".bad"))
        return batches

    @staticmethod
    def _unclaim(claimed: list[tuple[Path, list[Metric]]]) -> None:
        for path, _ in claimed:
            path.rename(path.with_name(path.name.removesuffix(".claimed")))


def _age(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0
