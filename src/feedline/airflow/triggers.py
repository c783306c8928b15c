"""An event trigger that fires when a complete new file lands in a local folder (for AssetWatcher)."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator
from typing import Any

from airflow.triggers.base import BaseEventTrigger, TriggerEvent

from feedline.storage.base import in_hidden_dir, is_ignored, match_key


def scan_complete(directory: str, pattern: str, settle_seconds: float) -> dict[str, tuple[int, int]]:
    """Map each complete matching file (relative key) to (size, mtime_ns); cheap: no hashing.

    A file is complete once its mtime is `settle_seconds` old; temporary and hidden names never are.
    """
    found: dict[str, tuple[int, int]] = {}
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
            if now - stat.st_mtime >= settle_seconds:
                found[key] = (stat.st_size, stat.st_mtime_ns)
    return found


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
            try:
                current = await asyncio.to_thread(
                    scan_complete, self.directory, self.pattern, self.settle_seconds
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
            await asyncio.sleep(self.poll_seconds)
