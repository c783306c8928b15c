"""Faults of content and keys: the same content delivered under two keys, new content under a known key."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from fault_support import Project, assert_settled, control_snapshot, drop, orders_feed, snapshot

from feedline.ledger import FileState
from support import age


def _log_feed() -> dict[str, object]:
    """The orders contract loading in append mode: every delivered file is kept as a batch of its own."""
    return orders_feed(
        name="orders_log",
        source={"uri": "data/landing/orders_log"},
        target={"table": "orders_log", "mode": "append"},
    )


@pytest.mark.timeout(120)
def test_same_content_under_two_keys(
    new_project: Callable[..., Project], warehouse_url: str, tmp_path: Path
) -> None:
    """Upsert: two ledger entries, each key once. Append: two ledger entries and the rows twice, each copy
    tagged with its own file id — the ledger tells files apart by key and content, so a re-export under a
    new name is a new delivery; an append feed that must not see it twice needs a primary key and upsert."""
    project = new_project(warehouse_url)
    project.add_feed(orders_feed())
    project.add_feed(_log_feed())
    for name in ("orders", "orders_log"):
        feed = project.feeds[name]
        pipeline = project.pipeline(name)
        landing = project.landing(name)
        clean = drop(landing, "export.csv", rows=5_000, seed=41, start_id=1)
        shutil.copyfile(landing / "export.csv", landing / "export-copy.csv")
        age(landing / "export-copy.csv")
        kept = tmp_path / name
        kept.mkdir()
        for path in landing.iterdir():
            shutil.copyfile(path, kept / path.name)

        assert pipeline.run_once().files == {"export.csv": "loaded", "export-copy.csv": "loaded"}

        entries = pipeline.ledger.entries(name)
        assert len({e.file_id for e in entries}) == 2
        assert len({e.identity for e in entries}) == 1
        assert [e.rows_loaded for e in entries] == [clean, clean]
        expected = control_snapshot(feed, [sorted(kept.iterdir())], tmp_path / f"control-{name}")
        assert_settled(pipeline, expected, files=2)
        table = snapshot(pipeline.warehouse, feed)
        if name == "orders":
            assert (table.rows, table.keys) == (clean, clean)
        else:
            assert (table.rows, table.keys) == (2 * clean, clean)
            one, other = (snapshot(pipeline.warehouse, feed, [e.file_id]) for e in entries)
            assert one == other
            assert (one.rows, one.keys) == (clean, clean)


@pytest.mark.timeout(120)
def test_new_content_under_a_known_key_is_a_new_version(
    new_project: Callable[..., Project], warehouse_url: str, tmp_path: Path
) -> None:
    """Both versions are recorded and loaded in order; the upsert table holds the newer values where the
    versions share keys, and both raw versions are kept in the archive."""
    project = new_project(warehouse_url)
    feed = project.add_feed(orders_feed())
    pipeline = project.pipeline()
    landing = project.landing()
    versions = []
    for number, (seed, start_id) in enumerate([(51, 1), (52, 2_001)], start=1):
        drop(landing, "daily.csv", rows=4_000, seed=seed, start_id=start_id)
        kept = tmp_path / f"v{number}"
        kept.mkdir()
        versions.append(Path(shutil.copyfile(landing / "daily.csv", kept / "daily.csv")))
        assert pipeline.run_once().files == {"daily.csv": "loaded"}

    entries = pipeline.ledger.entries("orders")
    assert [(e.key, e.version, e.state) for e in entries] == [
        ("daily.csv", 1, FileState.loaded),
        ("daily.csv", 2, FileState.loaded),
    ]
    assert entries[0].identity != entries[1].identity
    expected = control_snapshot(feed, [[versions[0]], [versions[1]]], tmp_path / "control")
    assert_settled(pipeline, expected, files=2)

    old, new = entries
    kept_old = snapshot(pipeline.warehouse, feed, [old.file_id]).rows
    assert snapshot(pipeline.warehouse, feed, [new.file_id]).rows == new.rows_loaded, "every new row is there"
    assert 0 < kept_old < (old.rows_loaded or 0), "old rows stay only where the new version lacks the key"
    archived = sorted(o.identity for o in pipeline.area("archive").list("*"))
    assert archived == sorted([old.identity, new.identity])
