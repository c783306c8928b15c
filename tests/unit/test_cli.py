"""The `feedline` command line: validate, run and status against real files and a real DuckDB."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from feedline.cli import app
from feedline.sample import write_orders_csv
from support import REPO, age

runner = CliRunner()


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "feeds").mkdir()
    shutil.copy(REPO / "feeds" / "orders.yaml", tmp_path / "feeds" / "orders.yaml")
    monkeypatch.setenv("FEEDLINE_HOME", str(tmp_path))
    monkeypatch.setenv("COLUMNS", "200")
    return tmp_path


def test_validate_ok_and_bad(home: Path) -> None:
    result = runner.invoke(app, ["validate"])
    assert result.exit_code == 0, result.output
    assert "ok    orders: 9 columns → orders (upsert)" in result.output

    text = (home / "feeds" / "orders.yaml").read_text()
    bad = text.replace("name: orders", "name: refunds").replace("mode: upsert", "mode: upsrt")
    (home / "feeds" / "refunds.yaml").write_text(bad)
    result = runner.invoke(app, ["validate"])
    assert result.exit_code == 1
    assert "refunds.yaml: target.mode" in result.output
    assert "ok    orders" in result.output


def test_run_then_status(home: Path) -> None:
    landing = home / "data" / "landing" / "orders"
    landing.mkdir(parents=True)
    stats = write_orders_csv(landing / "x.csv", rows=120, seed=3)
    age(landing / "x.csv")

    result = runner.invoke(app, ["run", "--feed", "orders"])
    assert result.exit_code == 0, result.output
    good = stats.rows - stats.bad - stats.duplicates
    assert f"{good} rows loaded, {stats.bad} rows rejected" in result.output

    result = runner.invoke(app, ["status", "--files"])
    assert result.exit_code == 0, result.output
    assert "x.csv" in result.output
    assert f"│ orders │ loaded │ 1     │ {stats.rows}" in result.output


def test_run_unknown_feed_and_status_before_any_load(home: Path) -> None:
    result = runner.invoke(app, ["run", "--feed", "nope"])
    assert result.exit_code == 2
    assert "no valid feed named 'nope'" in result.output
    result = runner.invoke(app, ["status"])
    assert result.exit_code == 0
    assert "nothing loaded yet" in result.output
