"""Replay: quarantined and failed files re-processed after a fix, exactly once, from the CLI and the API."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pytest
from typer.testing import CliRunner

from feedline.cli import app
from feedline.contract import load_feed
from feedline.ledger import FileState
from feedline.pipeline import FeedPipeline
from feedline.replay import replay
from feedline.sample import write_orders_csv
from feedline.settings import Settings
from support import REPO, age

runner = CliRunner()


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "feeds").mkdir()
    shutil.copy(REPO / "feeds" / "orders.yaml", tmp_path / "feeds" / "orders.yaml")
    monkeypatch.setenv("FEEDLINE_HOME", str(tmp_path))
    monkeypatch.setenv("COLUMNS", "250")
    return tmp_path


def _pipeline(home: Path) -> FeedPipeline:
    settings = Settings.from_env({"FEEDLINE_HOME": str(home)})
    return FeedPipeline(load_feed(home / "feeds" / "orders.yaml"), settings)


def _rows(home: Path, sql: str) -> list[tuple[Any, ...]]:
    with duckdb.connect(str(home / "data" / "warehouse.duckdb"), read_only=True) as con:
        return con.execute(sql).fetchall()


def _landing(home: Path) -> Path:
    path = home / "data" / "landing" / "orders"
    path.mkdir(parents=True, exist_ok=True)
    return path


def _renamed_header_file(home: Path, name: str, rows: int = 50, start_id: int = 1) -> tuple[Path, int]:
    """An orders file whose key column is headed `id`: quarantined until the contract maps it."""
    path = _landing(home) / name
    stats = write_orders_csv(path, rows=rows, seed=3, start_id=start_id)
    lines = path.read_text().splitlines(keepends=True)
    path.write_text(lines[0].replace("order_id", "id", 1) + "".join(lines[1:]))
    age(path)
    return path, stats.clean


def test_contract_fix_then_replay_from_the_cli(home: Path) -> None:
    raw, good = _renamed_header_file(home, "renamed.csv")
    content = raw.read_bytes()
    result = runner.invoke(app, ["run", "--feed", "orders"])
    assert result.exit_code == 1
    assert "quarantined" in result.output
    parked = home / "data" / "quarantine" / "orders" / "files" / "renamed.csv"
    assert parked.read_bytes() == content and not raw.exists()

    status = runner.invoke(app, ["status", "--feed", "orders"])
    assert "quarantined at" in status.output and "order_id" in status.output and "replay" in status.output

    feed_file = home / "feeds" / "orders.yaml"
    fixed = feed_file.read_text().replace("  - name: order_id\n", "  - name: order_id\n    source: id\n")
    feed_file.write_text(fixed)
    result = runner.invoke(app, ["replay", "--feed", "orders", "--state", "quarantined"])
    assert result.exit_code == 0, result.output
    assert "re-opened   renamed.csv (version 1)" in result.output
    assert _rows(home, "select count(*), count(distinct order_id) from orders") == [(good, good)]
    assert not parked.exists() and not parked.with_name("renamed.csv.reason.txt").exists()
    assert (home / "data" / "archive" / "orders" / "renamed.csv").read_bytes() == content
    [entry] = _pipeline(home).ledger.entries("orders")
    assert (entry.state, entry.version, entry.error) == (FileState.loaded, 1, None)
    assert entry.attempts == 2

    again = runner.invoke(app, ["replay", "--feed", "orders"])
    assert again.exit_code == 0 and "nothing to replay" in again.output
    assert _rows(home, "select count(*) from orders") == [(good,)]

    status = runner.invoke(app, ["status", "--files"])
    assert "loaded at" in status.output and f"{good} of" in status.output


def test_failed_file_is_replayed_exactly_once(home: Path) -> None:
    pipeline = _pipeline(home)
    stats = write_orders_csv(_landing(home) / "a.csv", rows=80, seed=9, start_id=1)
    age(_landing(home) / "a.csv")
    [ref] = pipeline.discover().refs
    result = pipeline.transform(ref)
    pipeline.fail(ref, "load: TransientError: connection to the warehouse lost")
    assert pipeline.ledger.get(ref["file_id"]).state is FileState.failed  # type: ignore[union-attr]
    assert pipeline.run_once().files == {}  # failed is terminal: only a replay re-opens it
    assert (_landing(home) / "a.csv").exists()

    reopened = replay(pipeline, states=[FileState.failed])
    assert [e.key for e in reopened.reopened] == ["a.csv"] and not reopened.skipped
    assert reopened.reopened[0].error is None
    summary = pipeline.run_once()
    assert summary.files == {"a.csv": "loaded"}
    assert _rows(home, "select count(*) from orders") == [(stats.clean,)]
    assert result["rows_out"] == stats.clean


def test_replay_filters_and_refusals(home: Path) -> None:
    pipeline = _pipeline(home)
    _renamed_header_file(home, "old.csv", start_id=1)
    _renamed_header_file(home, "new.csv", start_id=1000)
    pipeline.run_once()
    assert {e.state for e in pipeline.ledger.entries("orders")} == {FileState.quarantined}

    future = datetime.now(UTC) + timedelta(hours=1)
    assert replay(pipeline, since=future).reopened == []
    picked = replay(pipeline, keys=["new.csv", "missing.csv"])
    assert [e.key for e in picked.reopened] == ["new.csv"]
    assert "no quarantined/failed file" in picked.skipped["missing.csv"]
    with pytest.raises(ValueError, match="only quarantined or failed"):
        replay(pipeline, states=[FileState.loaded])


def test_replay_never_overwrites_a_newer_version(home: Path) -> None:
    pipeline = _pipeline(home)
    raw, _ = _renamed_header_file(home, "a.csv")
    pipeline.run_once()  # version 1: quarantined
    stats = write_orders_csv(raw, rows=40, seed=11, start_id=1)
    age(raw)
    pipeline.run_once()  # version 2: loaded
    assert _rows(home, "select count(*) from orders") == [(stats.clean,)]
    result = replay(pipeline)
    assert result.reopened == []
    assert "newer version (2)" in result.skipped["a.csv (version 1)"]


def test_cleanup_settles_a_crashed_file_and_removes_its_outputs(home: Path) -> None:
    pipeline = _pipeline(home)
    first = write_orders_csv(_landing(home) / "a.csv", rows=60, seed=4, start_id=1)
    second = write_orders_csv(_landing(home) / "b.csv", rows=60, seed=5, start_id=500)
    age(_landing(home) / "a.csv")
    age(_landing(home) / "b.csv")
    refs = pipeline.discover().refs
    a, b = sorted(refs, key=lambda r: r["key"])
    pipeline.transform(a)  # its load task then dies before recording anything
    pipeline.ledger.mark(a["file_id"], FileState.loading)
    pipeline.transform(b)  # still in flight in another task: cleanup must leave it alone
    clean = home / "data" / "processed" / "orders" / f"{a['file_id']}.parquet"
    rejected = home / "data" / "quarantine" / "orders" / "rows" / f"{a['file_id']}.parquet"
    assert clean.exists() and rejected.exists() and first.bad > 0

    problems = pipeline.cleanup(refs, crashed={a["file_id"]: "load"})
    assert list(problems) == ["a.csv"]
    assert problems["a.csv"].startswith("failed: load of orders/a.csv failed: the task process died")
    assert pipeline.ledger.get(a["file_id"]).state is FileState.failed  # type: ignore[union-attr]
    assert pipeline.ledger.get(b["file_id"]).state is FileState.transformed  # type: ignore[union-attr]
    assert not clean.exists() and not rejected.exists()
    assert (home / "data" / "processed" / "orders" / f"{b['file_id']}.parquet").exists()

    assert [e.key for e in replay(pipeline, keys=["a.csv"]).reopened] == ["a.csv"]
    assert pipeline.run_once().files == {"a.csv": "loaded", "b.csv": "loaded"}
    assert _rows(home, "select count(*) from orders") == [(first.clean + second.clean,)]
