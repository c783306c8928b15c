"""Helpers shared by the integration and end-to-end tests."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def make_project(root: Path, feeds: dict[str, str] | None = None) -> Path:
    """A project folder like the repo's: dags/ (copied), feeds/ (the example feed, or `feeds`)."""
    root.mkdir(parents=True, exist_ok=True)
    shutil.copytree(
        REPO / "dags", root / "dags", dirs_exist_ok=True, ignore=shutil.ignore_patterns("__pycache__")
    )
    (root / "feeds").mkdir(exist_ok=True)
    if feeds is None:
        shutil.copy(REPO / "feeds" / "orders.yaml", root / "feeds" / "orders.yaml")
    else:
        for name, text in feeds.items():
            (root / "feeds" / name).write_text(text)
    return root


def age(path: Path, seconds: float = 60) -> Path:
    """Backdate a file's mtime so it counts as complete (settled) right away."""
    then = time.time() - seconds
    os.utime(path, (then, then))
    return path
