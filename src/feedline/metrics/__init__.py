"""Metrics: what feedline measures (tasks, runs, files) and the sinks that record it."""

from __future__ import annotations

from feedline.metrics.emit import emit, make_sinks, sink_names
from feedline.metrics.model import CATALOG, Metric, Origin, Unit

__all__ = ["CATALOG", "Metric", "Origin", "Unit", "emit", "make_sinks", "sink_names"]
