"""Where feedline finds its feeds, lake and warehouse: read from the environment, with local defaults."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Settings:
    """Process-wide locations. Relative feed source folders resolve against `home`.

    Environment: FEEDLINE_HOME (default: the current directory), FEEDLINE_FEEDS (default: home/feeds),
    FEEDLINE_LAKE (default: home/data; holds processed/, quarantine/, archive/) and FEEDLINE_WAREHOUSE
    (a DuckDB file path, default home/data/warehouse.duckdb, or a postgresql:// URL).
    """

    home: Path
    feeds_dir: Path
    lake: str
    warehouse: str

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        home = Path(env.get("FEEDLINE_HOME") or Path.cwd()).resolve()
        feeds = Path(env.get("FEEDLINE_FEEDS") or home / "feeds")
        lake = env.get("FEEDLINE_LAKE") or str(home / "data")
        warehouse = env.get("FEEDLINE_WAREHOUSE") or str(home / "data" / "warehouse.duckdb")
        return cls(
            home=home,
            feeds_dir=feeds if feeds.is_absolute() else home / feeds,
            lake=lake,
            warehouse=warehouse,
        )

    def area(self, name: str, feed: str) -> str:
        """The lake location of one feed's `processed`, `quarantine` or `archive` area."""
        if name not in ("processed", "quarantine", "archive"):
            raise ValueError(f"unknown lake area {name!r}")
        return f"{self.lake.rstrip('/')}/{name}/{feed}"

    def source_location(self, uri: str) -> str:
        """Resolve a feed source URI: s3:// stays, a relative folder is taken from `home`."""
        if uri.startswith("s3://"):
            return uri
        path = Path(uri.removeprefix("file://"))
        return str(path if path.is_absolute() else self.home / path)
