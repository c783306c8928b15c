"""Fixtures for the transform tests: write a file, transform it, read both outputs back."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
from feed_builders import Outcome, Run, transform

from feedline.contract import Feed


@pytest.fixture
def run(tmp_path: Path) -> Run:
    """run(feed, text) or run(feed, data=bytes, name=...): transform that content as a landed file."""
    counter = itertools.count()

    def _run(
        feed: Feed, text: str | None = None, *, data: bytes | None = None, name: str = "in.csv"
    ) -> Outcome:
        folder = tmp_path / str(next(counter))
        folder.mkdir()
        source = folder / name
        source.write_bytes(data if data is not None else (text or "").encode("utf-8"))
        return transform(feed, source, folder / "out")

    return _run
