"""The local-folder event trigger: serializes round-trip and fires only for complete new files."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.airflow


def _trigger(directory: Path, **kwargs: float):  # type: ignore[no-untyped-def]
    from feedline.airflow.triggers import LocalFolderTrigger

    return LocalFolderTrigger(directory=str(directory), pattern="*.csv*", **kwargs)


def test_serialize_round_trip(tmp_path: Path) -> None:
    from airflow.triggers.base import BaseEventTrigger

    from feedline.airflow.triggers import LocalFolderTrigger

    trigger = _trigger(tmp_path, poll_seconds=0.5, settle_seconds=1.5)
    classpath, kwargs = trigger.serialize()
    assert classpath == "feedline.airflow.triggers.LocalFolderTrigger"
    again = LocalFolderTrigger(**kwargs)
    assert again.serialize() == (classpath, kwargs)
    assert isinstance(again, BaseEventTrigger)


def test_fires_for_complete_files_only(tmp_path: Path) -> None:
    old = time.time() - 60
    for name in ("a.csv", "b.csv.gz", "c.csv.part", ".d.csv", "e.txt"):
        (tmp_path / name).write_text("x")
        os.utime(tmp_path / name, (old, old))
    (tmp_path / "fresh.csv").write_text("still being written")

    async def first_events() -> list[dict[str, object]]:
        events = []
        agen = _trigger(tmp_path, poll_seconds=0.1, settle_seconds=5).run()
        events.append((await agen.__anext__()).payload)
        (tmp_path / "later.csv").write_text("y")
        os.utime(tmp_path / "later.csv", (old, old))
        events.append((await asyncio.wait_for(agen.__anext__(), 5)).payload)
        await agen.aclose()
        return events

    first, second = asyncio.run(first_events())
    assert first["keys"] == ["a.csv", "b.csv.gz"]
    assert second["keys"] == ["later.csv"]
