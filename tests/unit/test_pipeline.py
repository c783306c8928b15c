"""The feed pipeline without Airflow (`feedline run`): files to rows, ledger states, lake areas."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb
import pytest

from feedline.contract import load_feed
from feedline.ledger import FileState
from feedline.pipeline import FeedPipeline
from feedline.sample import write_orders_csv
from feedline.settings import Settings
from support import REPO, age


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings.from_env({"FEEDLINE_HOME": str(tmp_path)})


@pytest.fixture
def pipeline(settings: Settings) -> FeedPipeline:
    return FeedPipeline(load_feed(REPO / "feeds" / "orders.yaml"), settings)


def _rows(settings: Settings, sql: str) -> list[tuple[Any, ...]]:
    with duckdb.connect(settings.warehouse, read_only=True) as con:
        return con.execute(sql).fetchall()


def _landing(settings: Settings) -> Path:
    path = settings.home / "data" / "landing" / "orders"
    path.mkdir(parents=True, exist_ok=True)
    return path


def test_run_once_loads_and_archives(pipeline: FeedPipeline, settings: Settings) -> None:
    landing = _landing(settings)
    stats = write_orders_csv(landing / "a.csv", rows=500, seed=5, start_id=1)
    age(landing / "a.csv")
    summary = pipeline.run_once()
    good = stats.rows - stats.bad - stats.duplicates
    assert summary.files == {"a.csv": "loaded"}
    assert summary.rows_loaded == good
    assert summary.rows_rejected == stats.bad
    assert _rows(settings, "select count(*) from orders") == [(good,)]
    entry = pipeline.ledger.entries("orders")[0]
    assert entry.state is FileState.loaded
    assert (entry.rows_in, entry.rows_loaded, entry.rows_rejected, entry.duplicates) == (
        stats.rows,
        good,
        stats.bad,
        stats.duplicates,
    )
    assert entry.rows_in == entry.rows_loaded + entry.rows_rejected + entry.duplicates
    assert not (landing / "a.csv").exists()
    assert (settings.home / "data" / "archive" / "orders" / "a.csv").exists()
    rejected = settings.home / "data" / "quarantine" / "orders" / "rows" / f"{entry.file_id}.parquet"
    reasons = _rows(settings, f"select count(*), count(_reason) from read_parquet('{rejected}')")
    assert reasons == [(stats.bad, stats.bad)]


def test_files_not_settled_wait(pipeline: FeedPipeline, settings: Settings) -> None:
    landing = _landing(settings)
    write_orders_csv(landing / "fresh.csv", rows=10, seed=1)
    (landing / "big.csv.part").write_text("order_id\n")
    assert pipeline.run_once().files == {}
    assert (landing / "fresh.csv").exists()


def test_redelivery_and_new_version(pipeline: FeedPipeline, settings: Settings) -> None:
    landing = _landing(settings)
    write_orders_csv(landing / "a.csv", rows=100, seed=7, start_id=1)
    original = (landing / "a.csv").read_bytes()
    age(landing / "a.csv")
    pipeline.run_once()
    count = _rows(settings, "select count(*) from orders")

    (landing / "a.csv").write_bytes(original)  # the same content again: a no-op
    age(landing / "a.csv")
    assert pipeline.run_once().files == {}
    assert _rows(settings, "select count(*) from orders") == count
    assert not (landing / "a.csv").exists()

    write_orders_csv(landing / "a.csv", rows=100, seed=8, start_id=1)  # new content, same key
    age(landing / "a.csv")
    assert pipeline.run_once().files == {"a.csv": "loaded"}
    versions = sorted((e.version, e.state.value) for e in pipeline.ledger.entries("orders"))
    assert versions == [(1, "loaded"), (2, "loaded")]


def test_bad_file_is_quarantined_with_reason(pipeline: FeedPipeline, settings: Settings) -> None:
    landing = _landing(settings)
    (landing / "bad.csv").write_text("order_id,amount\n1,2\n")
    age(landing / "bad.csv")
    summary = pipeline.run_once()
    assert summary.files == {"bad.csv": "quarantined"}
    entry = pipeline.ledger.entries("orders")[0]
    assert entry.state is FileState.quarantined
    assert "customer_email" in (entry.error or "")
    quarantined = settings.home / "data" / "quarantine" / "orders" / "files"
    assert (quarantined / "bad.csv").read_text() == "order_id,amount\n1,2\n"
    assert "customer_email" in (quarantined / "bad.csv.reason.txt").read_text()
    assert not (landing / "bad.csv").exists()


def test_state_lines_are_logfmt_that_parses_back(
    pipeline: FeedPipeline, settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    """A key with a space and an error message with quotes and `=` come back whole from the log line."""
    import shlex

    landing = _landing(settings)
    (landing / "bad 2024.csv").write_text("order_id,amount\n1,2\n")
    age(landing / "bad 2024.csv")
    with caplog.at_level("INFO", logger="feedline.pipeline"):
        pipeline.run_once()
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("feedline.file ")]
    states = [dict(part.split("=", 1) for part in shlex.split(line)[1:]) for line in lines]
    assert [s["state"] for s in states] == ["detected", "transforming", "quarantined"]
    assert {s["key"] for s in states} == {"bad 2024.csv"}
    entry = pipeline.ledger.entries("orders")[0]
    assert states[-1]["error"] == (entry.error or "").splitlines()[0]
    assert " " in states[-1]["error"]


@pytest.mark.parametrize(
    "value", ["plain", "a b", 'say "hi"', "k=v", "back\\slash", "new\nline", "x\x85y", "a\u2028b", ""]
)
def test_a_logfmt_value_is_one_token_on_one_line_that_reads_back(value: str) -> None:
    import json
    import shlex

    from feedline.pipeline import logfmt_value

    text = logfmt_value(value)
    assert len(text.splitlines()) == 1 and text.isprintable()
    assert (json.loads(text) if text.startswith('"') else text) == value
    assert len(shlex.split(f"k={text}")) == 1


def test_crash_after_transform_is_finished_by_next_sweep(pipeline: FeedPipeline, settings: Settings) -> None:
    landing = _landing(settings)
    stats = write_orders_csv(landing / "a.csv", rows=50, seed=9)
    age(landing / "a.csv")
    ref = pipeline.discover().refs[0]
    pipeline.transform(ref)  # … and the worker dies before the load
    assert pipeline.ledger.get(ref["file_id"]).state is FileState.transformed  # type: ignore[union-attr]
    summary = pipeline.run_once()
    assert summary.files == {"a.csv": "loaded"}
    assert _rows(settings, "select count(*) from orders") == [(stats.rows - stats.bad - stats.duplicates,)]


def test_retried_load_after_commit_is_a_no_op(pipeline: FeedPipeline, settings: Settings) -> None:
    landing = _landing(settings)
    write_orders_csv(landing / "a.csv", rows=80, seed=10)
    age(landing / "a.csv")
    ref = pipeline.discover().refs[0]
    result = pipeline.transform(ref)
    first = pipeline.load(ref, result)
    again = pipeline.load(ref, result)
    assert first["already_loaded"] is False
    assert again == {"file_id": ref["file_id"], "rows_loaded": 0, "already_loaded": True}
    assert _rows(settings, "select count(*) from orders") == [(first["rows_loaded"],)]


def test_each_lake_area_is_opened_once_per_pipeline(pipeline: FeedPipeline, settings: Settings) -> None:
    """An S3 area builds its boto3 client on first use: one per area and pipeline, not one per step."""
    processed = pipeline.area("processed")
    assert pipeline.area("processed") is processed
    assert pipeline.area("archive") is not processed
    assert str(settings.home / "data" / "processed" / "orders") in str(processed.root)


def test_discover_removes_scratch_directories_of_killed_processes(
    pipeline: FeedPipeline, settings: Settings
) -> None:
    import os
    import time

    scratch = settings.home / "data" / ".tmp"
    stale, fresh, other = (
        scratch / n for n in ("feedline-scratch-orders-dead", "feedline-scratch-orders-live", "other")
    )
    for path in (stale, fresh, other):
        path.mkdir(parents=True)
        (path / "part.parquet").write_bytes(b"x")
    day_ago = time.time() - 25 * 3600
    for path in (stale, stale / "part.parquet", other):
        os.utime(path, (day_ago, day_ago))
    (fresh / "part.parquet").touch()
    os.utime(fresh, (day_ago, day_ago))  # an old directory a live step still writes into is kept

    pipeline.discover()

    assert sorted(p.name for p in scratch.iterdir()) == ["feedline-scratch-orders-live", "other"]
