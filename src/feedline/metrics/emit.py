"""Choose the sinks from the profile and environment, and send metrics to them without ever failing.

Sinks: `audit` (the warehouse's `feedline_audit.metrics`; the default), `cloudwatch` (added by default
when the profile is `aws`), `statsd` (added when FEEDLINE_STATSD=host:port is set). FEEDLINE_METRICS,
a comma-separated list of sink names (or `none`), replaces the default choice.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Protocol

from feedline.errors import ContractError
from feedline.metrics.model import Metric

if TYPE_CHECKING:
    from feedline.settings import Settings
    from feedline.warehouse.base import Warehouse

log = logging.getLogger(__name__)

SINKS = ("audit", "cloudwatch", "statsd")
METRICS_ENV = "FEEDLINE_METRICS"
STATSD_ENV = "FEEDLINE_STATSD"
LOCK_TIMEOUT_ENV = "FEEDLINE_METRICS_LOCK_TIMEOUT"
#: How long a metrics write waits for DuckDB's lock before spooling instead (seconds).
DEFAULT_LOCK_TIMEOUT = 2.0


class Sink(Protocol):
    name: str

    def emit(self, metrics: Sequence[Metric]) -> None: ...


def sink_names(settings: Settings, environ: Mapping[str, str] | None = None) -> list[str]:
    """The sinks in use: FEEDLINE_METRICS if set, else audit (+ cloudwatch on the aws profile), plus
    statsd when FEEDLINE_STATSD is set."""
    env = os.environ if environ is None else environ
    chosen = env.get(METRICS_ENV, "").strip()
    if chosen:
        names = [n.strip().lower() for n in chosen.split(",") if n.strip()]
        unknown = [n for n in names if n not in (*SINKS, "none")]
        if unknown:
            raise ContractError(
                f"{METRICS_ENV}: {', '.join(map(repr, unknown))} is not a metrics sink; "
                f"use a comma-separated list of {', '.join(SINKS)}, or none"
            )
        names = [n for n in names if n != "none"]
    else:
        names = ["audit", *(["cloudwatch"] if settings.profile == "aws" else [])]
    if env.get(STATSD_ENV) and "statsd" not in names and not chosen:
        names.append("statsd")
    return list(dict.fromkeys(names))


def make_sinks(
    settings: Settings,
    *,
    warehouse: Warehouse | None = None,
    warehouse_target: str | None = None,
    aws_conn_id: str | None = None,
    duckdb_lock_timeout: float | None = None,
    environ: Mapping[str, str] | None = None,
) -> list[Sink]:
    """The sinks `sink_names` selects. The audit sink writes to `warehouse`, or connects to
    `warehouse_target` (default: the settings' warehouse) waiting at most `duckdb_lock_timeout`
    (default: `lock_timeout()`) for DuckDB's lock."""
    env = os.environ if environ is None else environ
    sinks: list[Sink] = []
    for name in sink_names(settings, env):
        if name == "audit":
            from feedline.metrics.audit import AuditSink

            if warehouse is None:
                from feedline.warehouse import connect_warehouse

                target = warehouse_target or settings.warehouse
                wait = lock_timeout(env) if duckdb_lock_timeout is None else duckdb_lock_timeout
                warehouse = connect_warehouse(target, lock_timeout=wait)
            sinks.append(AuditSink(warehouse))
        elif name == "cloudwatch":
            from feedline.metrics.cloudwatch import CloudWatchSink

            sinks.append(CloudWatchSink(aws_conn_id=aws_conn_id))
        elif name == "statsd":
            from feedline.metrics.statsd import StatsdSink

            address = env.get(STATSD_ENV)
            if not address:
                raise ContractError(f"{METRICS_ENV} names statsd but {STATSD_ENV} is not set; set host:port")
            sinks.append(StatsdSink(address))
    return sinks


def lock_timeout(environ: Mapping[str, str] | None = None) -> float:
    """Seconds a metrics write waits for DuckDB's lock before spooling (FEEDLINE_METRICS_LOCK_TIMEOUT)."""
    env = os.environ if environ is None else environ
    return float(env.get(LOCK_TIMEOUT_ENV) or DEFAULT_LOCK_TIMEOUT)


def emit(metrics: Sequence[Metric], sinks: Sequence[Sink]) -> list[str]:
    """Send `metrics` to every sink. A sink's failure is logged, never raised: metrics must not turn a
    task's success into a failure. Returns the names of the sinks that failed."""
    failed: list[str] = []
    if not metrics:
        return failed
    for sink in sinks:
        try:
            sink.emit(metrics)
        except Exception as exc:
            failed.append(sink.name)
            feeds = ", ".join(sorted({m.feed for m in metrics}))
            log.warning(
                "feedline metrics: %d metric(s) of feed %s not sent to %s (%s: %s); the task is unaffected. "
                "Check the sink's settings (%s, %s, the warehouse or AWS connection)",
                len(metrics),
                feeds,
                sink.name,
                type(exc).__name__,
                exc,
                METRICS_ENV,
                STATSD_ENV,
                exc_info=log.isEnabledFor(logging.DEBUG),
            )
    return failed
