"""What a metric is, and the catalog of every metric feedline records (names, units, dimensions)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any


class Unit(StrEnum):
    """CloudWatch's unit names, used by every sink."""

    SECONDS = "Seconds"
    BYTES = "Bytes"
    COUNT = "Count"


#: The dimensions that name a CloudWatch metric (besides Feed); other keys stay in the audit table only.
SERIES_DIMENSIONS = ("Task", "State")


@dataclass(frozen=True)
class Definition:
    unit: Unit
    level: str
    description: str


#: Every metric name feedline records. docs/monitoring.md lists them (a unit test keeps the two in step).
CATALOG: dict[str, Definition] = {
    "task.finished": Definition(
        Unit.COUNT, "task", "1 per finished attempt; State is success, failed or up_for_retry"
    ),
    "task.duration": Definition(Unit.SECONDS, "task", "the attempt's wall time (start to end)"),
    "task.retries": Definition(Unit.COUNT, "task", "retries the task needed (final attempts only)"),
    "run.finished": Definition(Unit.COUNT, "run", "1 per finished DAG run; State is success or failed"),
    "run.duration": Definition(Unit.SECONDS, "run", "the run's wall time (start to end)"),
    "run.retries": Definition(Unit.COUNT, "run", "retries summed over the run's task instances"),
    "run.failed_tasks": Definition(Unit.COUNT, "run", "task instances of the run that ended failed"),
    "file.bytes": Definition(Unit.BYTES, "file", "size of the file version transformed"),
    "file.rows_in": Definition(Unit.COUNT, "file", "data rows read from the file"),
    "file.rows_rejected": Definition(Unit.COUNT, "file", "rows set aside with a reason"),
    "file.duplicates": Definition(Unit.COUNT, "file", "rows dropped as duplicates of a key"),
    "file.transform_seconds": Definition(Unit.SECONDS, "file", "time the transform itself took"),
    "file.rows_loaded": Definition(Unit.COUNT, "file", "rows the load published to the target"),
    "file.load_seconds": Definition(Unit.SECONDS, "file", "time the load (publish + ledger mark) took"),
    "file.latency_seconds": Definition(
        Unit.SECONDS, "file", "end to end: detected in the landing area → rows queryable (loaded_at)"
    ),
}


def utcnow() -> datetime:
    """Now as naive UTC, the way every warehouse backend stores timestamps."""
    return datetime.now(UTC).replace(tzinfo=None)


def naive_utc(value: datetime) -> datetime:
    return value.astimezone(UTC).replace(tzinfo=None) if value.tzinfo else value


@dataclass(frozen=True)
class Metric:
    """One measurement with where it comes from; `dimensions` holds Task/State and context (key, log…)."""

    name: str
    value: float
    feed: str
    unit: Unit = Unit.COUNT
    ts: datetime = field(default_factory=utcnow)
    dag_id: str | None = None
    run_id: str | None = None
    task_id: str | None = None
    map_index: int | None = None
    file_id: str | None = None
    dimensions: Mapping[str, str] = field(default_factory=dict)

    def series(self) -> dict[str, str]:
        """Feed plus the dimensions that tell series apart (Task, State), for CloudWatch and StatsD."""
        return {"Feed": self.feed} | {
            k: self.dimensions[k] for k in SERIES_DIMENSIONS if k in self.dimensions
        }

    def to_json(self) -> dict[str, Any]:
        data = {name: getattr(self, name) for name in self.__dataclass_fields__}
        data.update(ts=naive_utc(self.ts).isoformat(), unit=str(self.unit), dimensions=dict(self.dimensions))
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Metric:
        values = dict(data)
        values.update(
            ts=datetime.fromisoformat(values["ts"]),
            unit=Unit(values["unit"]),
            value=float(values["value"]),
            dimensions=dict(values.get("dimensions") or {}),
        )
        return cls(**values)

    def dimensions_json(self) -> str:
        return json.dumps(dict(self.dimensions), sort_keys=True, separators=(",", ":"))


@dataclass(frozen=True)
class Origin:
    """Where metrics come from: a feed and, inside Airflow, its DAG run, task and map index."""

    feed: str
    dag_id: str | None = None
    run_id: str | None = None
    task_id: str | None = None
    map_index: int | None = None
    file_id: str | None = None
    ts: datetime = field(default_factory=utcnow)

    def metric(self, name: str, value: float, **dimensions: Any) -> Metric:
        """A catalogued metric from here; dimensions whose value is None are left out."""
        definition = CATALOG[name]
        return Metric(
            name=name,
            value=float(value),
            feed=self.feed,
            unit=definition.unit,
            ts=naive_utc(self.ts),
            dag_id=self.dag_id,
            run_id=self.run_id,
            task_id=self.task_id,
            map_index=self.map_index,
            file_id=self.file_id,
            dimensions={k: str(v) for k, v in dimensions.items() if v is not None},
        )
