"""Infer a feed contract from a sample file, as commented YAML for a person to review (`feedline infer`).

Whatever is inferred describes the sample only, so every value carries a comment saying what it rests on.
Each column's type is checked on the sample with the transform's own cleaning and typing code, and the
YAML is validated against the contract before it is returned: a clean sample loads with no rejected row.
"""

from __future__ import annotations

import itertools
import math
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl
import yaml

from feedline.contract import FEED_NAME, parse_feed
from feedline.errors import ContractError
from feedline.infer.columns import ColumnGuess, Setting, add_rules, guess_column, identifiers, key_score
from feedline.infer.sample import Sample, read_sample

DEFAULT_ROWS = 100_000
KEY_CANDIDATES = 10
"""Only the most id-like eligible columns are combined into composite key candidates (bounded work)."""
NULL_RATE_CHECK = 0.25
"""A nullable column at most this empty in the sample gets a (warning) null_rate check."""


@dataclass
class Inference:
    """Everything inferred from one sample, in the order the YAML is written."""

    feed: str
    sample: Sample
    columns: list[ColumnGuess]
    primary_key: Setting
    checks: list[Setting] = field(default_factory=list)

    @property
    def rows(self) -> int:
        return self.sample.frame.height


def infer_feed_yaml(sample: Path | str, feed: str, rows: int = DEFAULT_ROWS) -> str:
    """The commented feed YAML inferred from the first `rows` rows of `sample`, validated as a contract."""
    from feedline.infer.render import render

    if not FEED_NAME.match(feed):
        hint = re.sub(r"[^a-z0-9_]+", "_", feed.lower()).strip("_") or "my_feed"
        raise ContractError(
            f"{feed!r} is not a feed name; use lowercase letters, digits and '_', e.g. {hint!r}"
        )
    text = render(infer_feed(Path(sample), feed, rows))
    parse_feed(yaml.safe_load(text), f"feed inferred from {sample}")
    return text


def infer_feed(sample: Path, feed: str, rows: int = DEFAULT_ROWS) -> Inference:
    """Read the sample's first rows and infer its columns, primary key and checks."""
    with tempfile.TemporaryDirectory(prefix="feedline-infer-") as workdir:
        data = read_sample(sample, rows, Path(workdir))
    names = identifiers(data.headers)
    columns = [
        guess_column(name, header, data.frame.get_column(f"__f{i}"))
        for i, (name, header) in enumerate(zip(names, data.headers, strict=True))
    ]
    key, key_note = primary_key(columns, data.frame.height)
    for column in columns:
        add_rules(column, is_key=column.name in key, rows=data.frame.height)
    inference = Inference(feed, data, columns, Setting(list(key), key_note))
    inference.checks = suggest_checks(inference)
    return inference


def primary_key(columns: list[ColumnGuess], rows: int) -> tuple[tuple[str, ...], str]:
    """The smallest set of columns (up to three) unique and non-null in the sample, preferring id-like
    names; decimals, floats and bools are never keys."""
    eligible = [
        c
        for c in columns
        if c.nulls == 0 and c.type not in ("float", "bool") and not c.type.startswith("dec")
    ]
    if not rows:
        return (), "no rows to find a key in: declare it if rows have one"
    ranked = sorted(eligible, key=lambda c: -key_score(c.name))
    frame = pl.DataFrame([c.typed.alias(c.name) for c in ranked[:KEY_CANDIDATES]])
    for size in (1, 2, 3):
        found = [
            combo
            for combo in itertools.combinations([c.name for c in ranked[:KEY_CANDIDATES]], size)
            if frame.select(pl.struct(combo).n_unique()).item() == rows
        ]
        if found:
            best = max(found, key=lambda combo: sum(key_score(n) for n in combo))
            others = [" + ".join(combo) for combo in found if combo != best]
            rest = (
                f"; also unique: {', '.join(others[:3])}{', …' if len(others) > 3 else ''}" if others else ""
            )
            return best, f"unique and non-null in all {rows:,} rows{rest}: check it identifies a row"
    return (), (
        f"no set of up to three columns is unique and non-null in {rows:,} rows: declare the key if rows "
        "have one (needed for mode: upsert)"
    )


def suggest_checks(inference: Inference) -> list[Setting]:
    """Batch checks: the key unique, at least one row, and null rates of mostly-filled columns."""
    checks = []
    key = inference.primary_key.value
    if key:
        checks.append(Setting({"check": "unique", "columns": key}, "the primary key"))
    checks.append(Setting({"check": "row_count", "min": 1}, "a file without rows is suspect"))
    rows = inference.rows
    for column in inference.columns:
        rate = column.nulls / rows if rows else 0
        if 0 < rate <= NULL_RATE_CHECK and column.nulls < rows:
            bound = min(1.0, math.ceil(rate * 200) / 100)
            checks.append(
                Setting(
                    {"check": "null_rate", "column": column.name, "max": bound, "severity": "warn"},
                    f"{rate:.1%} null in the sample; warns above about twice that",
                )
            )
    return checks
