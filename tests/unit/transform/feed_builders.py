"""Builders for the transform tests: feeds from column lists, and outcomes read back from Parquet."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl

from feedline.contract import Feed, parse_feed
from feedline.transform import TransformResult, transform_file


def make_feed(columns: list[dict[str, Any]], **extra: Any) -> Feed:
    """A feed with the given columns; `extra` sets other top-level fields (csv, primary_key...)."""
    raw: dict[str, Any] = {
        "name": "test",
        "source": {"uri": "data/landing/test"},
        "target": {"table": "test"},
        "columns": columns,
        **extra,
    }
    return parse_feed(raw, "test")


def one_column(ctype: str, **options: Any) -> Feed:
    """A feed with an `id` string column and one column `v` of `ctype`."""
    return make_feed([{"name": "id", "type": "string"}, {"name": "v", "type": ctype, **options}])


@dataclass
class Outcome:
    """What one transform produced: its result and both outputs, read back."""

    result: TransformResult
    clean: pl.DataFrame
    rejected: pl.DataFrame

    def reasons(self) -> list[str]:
        return list(self.rejected["_reason"])

    def column(self, name: str) -> list[Any]:
        return list(self.clean[name])


def transform(feed: Feed, source: Path, out: Path) -> Outcome:
    clean, rejected = out / "clean.parquet", out / "rejected.parquet"
    result = transform_file(feed, source, clean, rejected)
    return Outcome(result, pl.read_parquet(clean), pl.read_parquet(rejected))


Run = Callable[..., Outcome]
"""The `run` fixture: run(feed, text) or run(feed, data=bytes, name=...) -> Outcome."""
