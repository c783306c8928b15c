"""An event trigger that fires when a complete new file lands in a local folder (for AssetWatcher)."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator
from typing import Any

from airflow.triggers.base import BaseEventTrigger, TriggerEvent

from feedline.storage.base import in_hidden_dir, is_ignored, match_key

_MARGIN = 0.01  # seconds past a file's settle time, so that the next scan counts it complete


def scan_complete(directory: str, pattern: str, settle_seconds: float) -> dict[str, tuple[int, int]]:
    """Map each complete matching file (relative key) to (size, mtime_ns); cheap: no hashing.

    A file is complete once its mtime is `settle_seconds` old; temporary and hidden names never are.
    """
    return scan(directory, pattern, settle_seconds)[0]


def scan(
    directory: str, pattern: str, settle_seconds: float
) -> tuple[dict[str, tuple[int, int]], float | None]:
    """`scan_complete`'s files, and the seconds until the next matching file still settling completes
    (None when none is), so the trigger can look again exactly then instead of a poll later."""
    found: dict[str, tuple[int, int]] = {}
    settles_in: float | None = None
    now = time.time()
    for root, dirs, files in os.walk(directory):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        for name in files:
            path = os.path.join(root, name)
            key = os.path.relpath(path, directory).replace(os.sep, "/")
            if is_ignored(key) or in_hidden_dir(key) or not match_key(key, pattern):
                continue
            try:
                stat = os.stat(path)
            except FileNotFoundError:
                continue
            age = now - stat.st_mtime
            if age >= settle_seconds:
                found[key] = (stat.st_size, stat.st_mtime_ns)
            else:
                settles_in = min(
                    settle_seconds - age, settles_in if settles_in is not None else settle_seconds
                )
    return found, settles_in


class LocalFolderTrigger(BaseEventTrigger):
    """Fire one event per batch of new or changed complete files in `directory` matching `pattern`.

    The trigger keeps no state outside memory: after a triggerer restart it fires once for the files
    already present. That is harmless by design — events only wake the feed's DAG; the ledger decides
    what is new, so a spurious event costs one no-op run.
    """

    def __init__(
        self, *, directory: str, pattern: str = "*", poll_seconds: float = 1.0, settle_seconds: float = 2.0
    ) -> None:
        super().__init__()
        self.directory = directory
        self.pattern = pattern
        self.poll_seconds = poll_seconds
        self.settle_seconds = settle_seconds

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "directory": self.directory,
                "pattern": self.pattern,
                "poll_seconds": self.poll_seconds,
                "settle_seconds": self.settle_seconds,
            },
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        seen: dict[str, tuple[int, int]] = {}
        while True:
            settles_in: float | None = None
            try:
                current, settles_in = await asyncio.to_thread(
                    scan, self.directory, self.pattern, self.settle_seconds
                )
            except OSError as exc:
                self.log.warning(
                    "Cannot list %s (%s); retrying in %.1fs", self.directory, exc, self.poll_seconds
                )
                current = seen
            fresh = sorted(key for key, stat in current.items() if seen.get(key) != stat)
            seen = current
            if fresh:
                self.log.info("%d new file(s) in %s: %s", len(fresh), self.directory, ", ".join(fresh[:10]))
                yield TriggerEvent({"directory": self.directory, "keys": fresh[:100], "count": len(fresh)})
            # A file seen while settling is announced the moment it is complete, not up to a poll later.
            wait = self.poll_seconds if settles_in is None else min(self.poll_seconds, settles_in + _MARGIN)
            await asyncio.sleep(wait)
