"""Batch checks through `FeedPipeline.run_once()` and `feedline status --checks`: a file failing an `error`
check ends quarantined with the failed checks named, the target table untouched."""

from __future__ import annotations

from pathlib import Path

import pytest
from quality_data import dump
from typer.testing import CliRunner

from feedline.cli import app
from feedline.contract import Feed, parse_feed
from feedline.ledger import FileState
from feedline.pipeline import FeedPipeline
from feedline.quality.checks import failed_results, latest_results
from feedline.settings import Settings
from feedline.warehouse.base import Warehouse
from support import age
from warehouses import make_warehouse

HEADER = "order_id,email,country,amount,quantity,ordered_at\n"
GOOD = HEADER + "1,a@x.com,DE,10.50,2,2024-01-02 03:04:05\n2,b@x.com,FR,3.00,1,2024-01-02 04:00:00\n"
# five rows (row_count allows three) and one without email (null_rate warns above 0)
BAD = HEADER + "".join(
    f"{i},{'' if i == 4 else f'c{i}@x.com'},DE,1.00,1,2024-01-03 00:00:00\n" for i in range(3, 8)
)


def feed() -> Feed:
    return parse_feed(
        {
            "name": "orders",
            "source": {"uri": "data/landing/orders"},
            "columns": [
                {"name": "order_id", "type": "bigint", "nullable": False},
                {"name": "email", "type": "string"},
                {"name": "country", "type": "string"},
                {"name": "amount", "type": "decimal(12,2)"},
                {"name": "quantity", "type": "int"},
                {"name": "ordered_at", "type": "timestamp"},
            ],
            "primary_key": ["order_id"],
            "target": {"table": "orders", "mode": "upsert"},
            "checks": [
                {"check": "row_count", "max": 3, "name": "at_most_three"},
                {"check": "null_rate", "column": "email", "max": 0, "severity": "warn"},
            ],
        },
        "test",
    )


def land(settings: Settings, name: str, text: str) -> None:
    landing = settings.home / "data" / "landing" / "orders"
    landing.mkdir(parents=True, exist_ok=True)
    (landing / name).write_text(text)
    age(landing / name)


@pytest.fixture(params=["duckdb", "postgres"])
def warehouse(request: pytest.FixtureRequest, tmp_path: Path) -> Warehouse:
    url = None if request.param == "duckdb" else request.getfixturevalue("postgres_url")
    return make_warehouse(str(request.param), tmp_path / "wh", url)


def test_run_once_quarantines_a_file_failing_an_error_check(warehouse: Warehouse, tmp_path: Path) -> None:
    settings = Settings.from_env({"FEEDLINE_HOME": str(tmp_path)})
    pipeline = FeedPipeline(feed(), settings, warehouse)
    land(settings, "a.csv", GOOD)
    assert pipeline.run_once().files == {"a.csv": "loaded"}
    before = dump(warehouse, pipeline.feed)

    land(settings, "b.csv", BAD)
    summary = pipeline.run_once()

    assert summary.files == {"b.csv": "quarantined"}
    assert dump(warehouse, pipeline.feed) == before
    entry = next(e for e in pipeline.ledger.entries("orders") if e.key == "b.csv")
    assert entry.state is FileState.quarantined
    error = entry.error or ""
    assert error.startswith("load of orders/b.csv failed: orders: loading ")
    assert (
        "2 batch check(s) failed, nothing was published: at_most_three [error]: 5 rows (expected at most 3)"
        in error
    )
    assert "null_rate_email [warn]: 1 of 5 rows (20%) have no email (expected at most 0% null)" in error
    assert error.endswith("`feedline replay --feed orders --file b.csv`")
    reason = settings.home / "data" / "quarantine" / "orders" / "files" / "b.csv.reason.txt"
    assert "at_most_three [error]" in reason.read_text()

    latest = {r["check"]: (r["passed"], r["observed"]) for r in latest_results(warehouse, "orders")}
    assert latest == {"at_most_three": (False, 5.0), "null_rate_email": (False, 0.2)}
    failed = failed_results(warehouse)
    assert [(r["key"], r["state"], r["check"], r["severity"]) for r in failed] == [
        ("b.csv", "quarantined", "at_most_three", "error"),
        ("b.csv", "quarantined", "null_rate_email", "warn"),
    ]


def test_status_shows_the_latest_results_and_the_failed_checks_per_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FEEDLINE_HOME", str(tmp_path))
    monkeypatch.setenv("COLUMNS", "250")
    runner = CliRunner()
    assert "Batch checks" not in runner.invoke(app, ["status"]).output
    settings = Settings.from_env()
    pipeline = FeedPipeline(feed(), settings)
    land(settings, "a.csv", GOOD)
    pipeline.run_once()
    result = runner.invoke(app, ["status", "--checks"])
    assert result.exit_code == 0, result.output
    assert "latest result per feed and check" in result.output
    assert "│ orders │ at_most_three   │ error    │ passed │ 2" in result.output
    assert "Failed batch checks per file (newest first): none" in result.output

    land(settings, "b.csv", BAD)
    pipeline.run_once()
    result = runner.invoke(app, ["status", "--checks", "--feed", "orders"])
    assert result.exit_code == 0, result.output
    assert "│ orders │ at_most_three   │ error    │ failed │ 5" in result.output
    assert (
        "│ orders │ b.csv │ 1       │ quarantined    │ at_most_three   │ error    │ 5 rows" in result.output
    )


def test_status_checks_on_a_warehouse_from_before_checks(tmp_path: Path) -> None:
    """A warehouse whose audit schema has no checks table yet (never re-ensured) reads as no results."""
    warehouse = make_warehouse("duckdb", tmp_path)
    with warehouse.transaction() as tx:
        tx.execute('CREATE SCHEMA "feedline_audit"')
    assert latest_results(warehouse) == []
    assert failed_results(warehouse) == []
