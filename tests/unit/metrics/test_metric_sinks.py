"""Which sinks a deployment gets, and what the StatsD and CloudWatch sinks send."""

from __future__ import annotations

import socket
from datetime import UTC, datetime
from pathlib import Path

import pytest

from feedline.errors import ContractError
from feedline.metrics import Origin, make_sinks, sink_names
from feedline.metrics.audit import AuditSink
from feedline.metrics.cloudwatch import datum
from feedline.metrics.statsd import StatsdSink
from feedline.settings import Settings

TS = datetime(2026, 3, 1, 12, 0, 0)


def _settings(tmp_path: Path, profile: str = "local") -> Settings:
    warehouse = str(tmp_path / "w.duckdb")
    return Settings(
        home=tmp_path, feeds_dir=tmp_path, lake=str(tmp_path), warehouse=warehouse, profile=profile
    )


@pytest.mark.parametrize(
    ("profile", "env", "expected"),
    [
        ("local", {}, ["audit"]),
        ("aws", {}, ["audit", "cloudwatch"]),
        ("local", {"FEEDLINE_STATSD": "localhost:8125"}, ["audit", "statsd"]),
        ("local", {"FEEDLINE_METRICS": "cloudwatch"}, ["cloudwatch"]),
        ("aws", {"FEEDLINE_METRICS": " Audit , statsd", "FEEDLINE_STATSD": "h:1"}, ["audit", "statsd"]),
        ("aws", {"FEEDLINE_METRICS": "none"}, []),
    ],
)
def test_sinks_follow_the_profile_and_the_environment(
    tmp_path: Path, profile: str, env: dict[str, str], expected: list[str]
) -> None:
    assert sink_names(_settings(tmp_path, profile), env) == expected


def test_an_unknown_sink_or_a_missing_statsd_address_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ContractError, match="'datadog' is not a metrics sink; use a comma-separated list"):
        sink_names(_settings(tmp_path), {"FEEDLINE_METRICS": "audit,datadog"})
    with pytest.raises(ContractError, match="FEEDLINE_STATSD is not set; set host:port"):
        make_sinks(_settings(tmp_path), environ={"FEEDLINE_METRICS": "statsd"})
    with pytest.raises(ContractError, match="'localhost' is not host:port"):
        StatsdSink("localhost")


def test_the_audit_sink_writes_to_the_profiles_warehouse(tmp_path: Path) -> None:
    (sink,) = make_sinks(_settings(tmp_path), environ={})
    assert isinstance(sink, AuditSink)
    assert sink.spool == tmp_path / "w.duckdb.metrics-spool"


def test_statsd_lines_reach_a_udp_socket(tmp_path: Path) -> None:
    origin = Origin("orders", task_id="process.load", ts=TS)
    metrics = [
        origin.metric("task.finished", 1, Task="process.load", State="success", key="a.csv"),
        origin.metric("task.duration", 1.25, Task="process.load", State="success"),
        origin.metric("file.rows_loaded", 123456789),
        origin.metric("file.bytes", 2048),
    ]
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as server:
        server.bind(("127.0.0.1", 0))
        server.settimeout(5)
        StatsdSink(f"127.0.0.1:{server.getsockname()[1]}").emit(metrics)
        received = server.recv(65536).decode().splitlines()
    assert received == [
        "feedline.orders.task.finished.process_load.success:1|c",
        "feedline.orders.task.duration.process_load.success:1250|ms",
        "feedline.orders.file.rows_loaded:123456789|c",
        "feedline.orders.file.bytes:2048|c",
    ]


def test_a_cloudwatch_datum_has_the_feed_task_and_state_dimensions_only() -> None:
    origin = Origin("orders", task_id="process.transform", ts=TS)
    failed = origin.metric(
        "task.finished", 1, Task="process.transform", State="failed", key="b.csv", log="/x"
    )
    assert datum(failed) == {
        "MetricName": "task.finished",
        "Dimensions": [
            {"Name": "Feed", "Value": "orders"},
            {"Name": "Task", "Value": "process.transform"},
            {"Name": "State", "Value": "failed"},
        ],
        "Timestamp": TS.replace(tzinfo=UTC),
        "Value": 1.0,
        "Unit": "Count",
    }
    assert datum(origin.metric("file.latency_seconds", 2.5))["Dimensions"] == [
        {"Name": "Feed", "Value": "orders"}
    ]
