"""Timestamps through the streaming transform: the fast, shape-guarded parse equals every format in order."""

from __future__ import annotations

import random
from datetime import datetime
from decimal import Decimal
from typing import Any

import polars as pl
import pytest
from feed_builders import Run, one_column

from feedline.contract import Column
from feedline.transform.times import TimeParser

ORDERS_FORMATS = ["%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S", "%d/%m/%Y %H:%M", "%m-%d-%Y %H:%M"]
SHAPED = [
    "2024-03-05 14:07:09",
    "2024-03-05T14:07:09",
    "05/03/2024 14:07",
    "03-05-2024 14:07",
    "2024-03-05",
    "2024-03-05T14:07",
    "2024-03-05 14:07",
    "2024-03-05T14:07:09Z",
    "2024-03-05T14:07:09.123+02:00",
    "2024-03-05 14:07:09.5-0530",
    "2024-03-05T14:07:09.123456789+05",
]
LEFTOVERS = [
    "5/3/2024 4:07",
    "2024-3-5 4:07:09",
    "2024-02-30 10:00:00",
    "15/13/2024 10:00",
    "2024-03-05T14:07:09+25:00",
    "2024-03-05T14:07:09.5Z+01",
    "2024-03-05T14:07:09.\u0663Z",
    "2024-03-05T14:07:09+\u0660\u0662:\u0660\u0660",
    "yesterday",
]


def _csv(values: list[str]) -> str:
    return "id,v\n" + "".join(f"{i},{v}\n" for i, v in enumerate(values))


def _every_format_in_order(values: list[str]) -> list[Any]:
    parser = TimeParser(Column(name="v", type="timestamp", formats=ORDERS_FORMATS))
    frame = pl.DataFrame({"v": values}).select(parser.parse_all(pl.col("v")).alias("v"))
    return list(frame.get_column("v"))


def test_fast_parse_equals_every_format_in_order_across_batches(
    run: Run, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Small CSV chunks make many streamed batches: the first ones hold values the fast parse leaves over,
    the later ones none; each value still gets the first format that parses it, or rejects its row."""
    monkeypatch.setenv("POLARS_CSV_CHUNK_SIZE", str(64 << 10))
    batches: list[int] = []
    fill = TimeParser.fill_batch

    def counted(self: TimeParser, batch: pl.Series) -> pl.Series:
        batches.append(len(batch))
        return fill(self, batch)

    monkeypatch.setattr(TimeParser, "fill_batch", counted)
    values = (SHAPED + LEFTOVERS) * 20 + SHAPED * 3000
    expected = _every_format_in_order(values)
    out = run(one_column("timestamp", formats=ORDERS_FORMATS), _csv(values))
    assert len(batches) > 5
    assert out.column("v") == [stamp for stamp in expected if stamp is not None]
    rejected = [int(line) - 1 for line in out.rejected.get_column("_line")]
    assert rejected == [i for i, stamp in enumerate(expected) if stamp is None]
    assert out.result.rows_rejected == 7 * 20


def test_iso_tail_with_non_ascii_digits_rejects_the_row(run: Run) -> None:
    """Such a fraction or zone used to stop the whole file with a cast error; now its row is set aside."""
    values = ["2024-03-05T14:07:09.\u0663Z", "2024-03-05T14:07:09+\u0660\u0662", "2024-03-05T14:07:09.5Z"]
    out = run(one_column("timestamp", formats=ORDERS_FORMATS), _csv(values))
    assert out.column("v") == [datetime(2024, 3, 5, 14, 7, 9, 500000)]
    tried = ", ".join(ORDERS_FORMATS)
    assert out.reasons() == [
        f"v: '{value}' is not a timestamp (tried {tried}, ISO 8601)" for value in values[:2]
    ]


def test_decimal_with_non_ascii_digits_is_rejected(run: Run) -> None:
    out = run(one_column("decimal(12,2)"), _csv(["\u0661\u0662.\u0665", "12.5"]))
    assert out.column("v") == [Decimal("12.50")]
    assert out.result.rows_rejected == 1
    assert out.reasons()[0].startswith("v: '\u0661\u0662.\u0665' ")


def _mutations(count: int) -> list[str]:
    """Well-formed stamps of every shape with one to three characters changed, inserted or dropped."""
    rng = random.Random(7)
    alphabet = "0123456789-:/T .Z+z"
    values: set[str] = set()
    while len(values) < count:
        chars = list(rng.choice(SHAPED + LEFTOVERS[:2]))
        for _ in range(rng.randint(1, 3)):
            at = rng.randrange(len(chars))
            roll = rng.random()
            if roll < 0.4:
                chars[at] = rng.choice(alphabet)
            elif roll < 0.7:
                chars.insert(at, rng.choice(alphabet))
            else:
                del chars[at]
        values.add("".join(chars).strip())
    return sorted(values)


@pytest.mark.parametrize("formats", [ORDERS_FORMATS, [], ["%d/%m/%Y %H:%M", "%m/%d/%Y %H:%M"]])
def test_plan_steps_equal_every_format_in_order_on_near_misses(formats: list[str]) -> None:
    parser = TimeParser(Column(name="v", type="timestamp", formats=formats))
    plan = pl.DataFrame({"text": _mutations(5000)}).lazy()
    for step in parser.stages("text", "fast"):
        plan = plan.with_columns(step)
    out = plan.select("fast", every=parser.parse_all(pl.col("text"))).collect(engine="streaming")
    assert out.get_column("fast").count() > 300
    assert out.get_column("fast").equals(out.get_column("every"), check_names=False)
