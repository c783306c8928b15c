"""Regressions (fault suite, two `feedline run` at once): two processes moving the same file to the same
place leave one copy and raise nothing; a run archiving a file another run archived first moves on."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import pytest

from feedline.contract import load_feed
from feedline.pipeline import FeedPipeline
from feedline.settings import Settings
from feedline.storage import LocalStorage
from feedline.storage import local as local_module
from support import REPO


def _file(root: Path, key: str, data: bytes) -> Path:
    path = root / key
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    past = time.time() - 60
    os.utime(path, (past, past))
    return path


def test_a_name_taken_by_a_concurrent_mover_of_the_same_file_is_looked_at_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The other mover links the same content first: ours finds it there and deletes the source, instead
    of keeping a tagged twin (a.<id>.csv) of identical bytes."""
    source, archive = LocalStorage(tmp_path / "landing"), LocalStorage(tmp_path / "archive")
    _file(tmp_path / "landing", "a.csv", b"same bytes")
    real_move_to = LocalStorage._move_to
    raced: list[str] = []

    def the_other_mover_links_first(self: LocalStorage, key: str, dest: Any, dest_key: str) -> bool:
        if not raced:  # between our look at the archive and our link
            raced.append(dest_key)
            _file(tmp_path / "archive", dest_key, b"same bytes")
        return real_move_to(self, key, dest, dest_key)

    monkeypatch.setattr(LocalStorage, "_move_to", the_other_mover_links_first)
    assert source.move("a.csv", archive, "a.csv") == archive.url("a.csv")
    assert raced == ["a.csv"]
    assert sorted(p.name for p in (tmp_path / "archive").iterdir()) == ["a.csv"]
    assert not (tmp_path / "landing" / "a.csv").exists()


def test_a_source_deleted_by_a_concurrent_mover_after_our_link_is_not_an_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source, archive = LocalStorage(tmp_path / "landing"), LocalStorage(tmp_path / "archive")
    src = _file(tmp_path / "landing", "a.csv", b"bytes")
    real_link = os.link

    def link_then_other_deletes(a: Any, b: Any) -> None:
        real_link(a, b)
        src.unlink()  # the other process saw our copy in the archive and deleted the source

    monkeypatch.setattr(local_module.os, "link", link_then_other_deletes)
    assert source.move("a.csv", archive, "a.csv") == archive.url("a.csv")
    assert (tmp_path / "archive" / "a.csv").read_bytes() == b"bytes"
    assert not src.exists()


def test_archive_skips_a_file_another_run_archived_since_the_listing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = Settings.from_env({"FEEDLINE_HOME": str(tmp_path)})
    pipeline = FeedPipeline(load_feed(REPO / "feeds" / "orders.yaml"), settings)
    landing = tmp_path / "data" / "landing" / "orders"
    for name in ("a.csv", "b.csv"):
        _file(landing, name, f"order_id,amount\n1,{name}\n".encode())
    refs = pipeline.discover().refs
    for ref in refs:
        pipeline.ledger.mark(ref["file_id"], "loaded", rows_loaded=0)  # type: ignore[arg-type]
    real_move = LocalStorage.move

    def other_run_first(self: LocalStorage, key: str, dest: Any, dest_key: str) -> str:
        if key == "a.csv":
            real_move(self, key, dest, dest_key)  # the other run's archive step
        return real_move(self, key, dest, dest_key)

    monkeypatch.setattr(LocalStorage, "move", other_run_first)
    assert pipeline.archive() == {"archived": 1, "quarantined": 0}
    assert sorted(p.name for p in (tmp_path / "data" / "archive" / "orders").iterdir()) == ["a.csv", "b.csv"]
    assert list(landing.iterdir()) == []
