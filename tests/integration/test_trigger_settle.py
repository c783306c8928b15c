"""The folder trigger announces a settling file the moment it is complete, not a poll interval later."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.airflow


def test_settling_file_fires_when_it_settles_not_at_the_next_poll(tmp_path: Path) -> None:
    from feedline.airflow.triggers import LocalFolderTrigger

    settle, poll = 1.0, 30.0
    path = tmp_path / "a.csv"
    path.write_text("x")
    almost = time.time() - (settle - 0.4)  # complete in ~0.4 s
    os.utime(path, (almost, almost))

    async def first_event() -> tuple[dict[str, object], float]:
        trigger = LocalFolderTrigger(
            directory=str(tmp_path), pattern="*.csv", poll_seconds=poll, settle_seconds=settle
        )
        started = time.monotonic()
        agen = trigger.run()
        event = await asyncio.wait_for(agen.__anext__(), 10)
        await agen.aclose()
        return event.payload, time.monotonic() - started

    payload, waited = asyncio.run(first_event())
    assert payload["keys"] == ["a.csv"]
    assert 0.2 <= waited < 3, f"fired after {waited:.2f}s; the file settled after ~0.4s, the poll is {poll}s"


def test_scan_reports_when_the_next_file_settles(tmp_path: Path) -> None:
    from feedline.airflow.triggers import scan

    old = time.time() - 60
    (tmp_path / "done.csv").write_text("x")
    os.utime(tmp_path / "done.csv", (old, old))
    (tmp_path / "busy.csv").write_text("y")
    (tmp_path / ".hidden.csv").write_text("z")

    found, settles_in = scan(str(tmp_path), "*.csv", settle_seconds=5)

    assert list(found) == ["done.csv"]
    assert settles_in is not None and 4 < settles_in <= 5
    assert scan(str(tmp_path / "none"), "*.csv", settle_seconds=5) == ({}, None)
