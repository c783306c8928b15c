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


#: Set by `scripts/reliability_doc.py`: a JSON-lines file where the corpus and fault tests record the
#: outcome they asserted, so docs/reliability.md shows what the tests really saw.
RECORD_ENV = "FEEDLINE_RELIABILITY_RECORD"


def record_outcome(section: str, name: str, **fields: object) -> None:
    """Append one asserted outcome to the reliability record, if one is being made."""
    import json

    path = os.environ.get(RECORD_ENV)
    if not path:
        return
    with open(path, "a", encoding="utf-8") as out:
        out.write(json.dumps({"section": section, "name": name, **fields}, default=str) + "\n")
