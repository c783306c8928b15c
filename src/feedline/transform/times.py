"""Parse date and timestamp text against several formats fast: each value is parsed by the formats of its shape."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import polars as pl

from feedline.contract import Column
from feedline.transform.shapes import Shape, shape_of

ISO_NAIVE = ("%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M", "%Y-%m-%d")
ISO_AWARE = ("%Y-%m-%dT%H:%M:%S%.f%#z", "%Y-%m-%d %H:%M:%S%.f%#z")
ZONED = ("%z", "%#z", "%:z", "%::z", "%Z")
ISO_TAIL = r"^(?:\.(?P<frac>\d{1,9}))?(?:(?P<z>[Zz])|(?P<sign>[+-])(?P<hh>\d{2})(?::?(?P<mm>\d{2}))?)?$"
"""What may follow `YYYY-MM-DDTHH:MM:SS` in ISO 8601: a fraction, then a zone (Z, +hh, +hhmm, +hh:mm)."""
HEAD = 19
"""Length of `YYYY-MM-DDTHH:MM:SS`, the fixed-width head of an ISO 8601 timestamp."""
TEXT, ROUTE, ROW = "text", "route", "row"


def formats_of(column: Column) -> tuple[str, ...]:
    """The formats tried, in order, for a date or timestamp column: its own, then ISO 8601."""
    iso = ("%Y-%m-%d",) if column.type.name == "date" else (*ISO_NAIVE, *ISO_AWARE)
    return tuple(dict.fromkeys((*column.formats, *iso)))


@dataclass(frozen=True)
class Attempt:
    """One fast parse: a format tried on the values of its shape; `head` ones read ISO 8601's first 19 bytes."""

    fmt: str
    head: bool = False


@dataclass(frozen=True)
class TimeParser:
    """Parses one date/timestamp column: its formats in order, then ISO 8601; the first that parses wins.

    A failed parse costs polars ~3x a successful one, and polars kernels pay for masked-out values too, so
    trying N formats on every value costs N passes. Instead each value gets a *route*: a bitmask of the fast
    attempts its shape allows (length and separators at fixed places, zero-padded fields). Per streamed
    batch, the values of each route are filtered out and parsed by that route's attempts only; ISO 8601 with a
    fraction or zone is read as a fixed-width head plus a tail split by regex. What is left (mostly invalid
    text) is tried against every format in order. The result equals trying, for each value, the attempts of
    its shape in order, then every format.
    """

    column: Column

    @property
    def formats(self) -> tuple[str, ...]:
        return formats_of(self.column)

    @property
    def is_date(self) -> bool:
        return self.column.type.name == "date"

    @property
    def dtype(self) -> pl.DataType:
        return pl.Date() if self.is_date else pl.Datetime("us")

    def parse(self, value: pl.Expr, fmt: str) -> pl.Expr:
        stamp = value.str.to_datetime(fmt, time_unit="us", strict=False, cache=False)
        if any(zone in fmt for zone in ZONED):
            stamp = stamp.dt.convert_time_zone("UTC").dt.replace_time_zone(None)
        return stamp.dt.date() if self.is_date else stamp

    def parse_all(self, value: pl.Expr) -> pl.Expr:
        """Every format in order on every value: exact but slow, for the few values left over."""
        return pl.coalesce([self.parse(value, fmt) for fmt in self.formats])

    @cached_property
    def shapes(self) -> dict[str, Shape]:
        own = self.column.formats if not self.is_date else self.formats
        return {fmt: shape for fmt in own if (shape := shape_of(fmt)) is not None}

    @cached_property
    def attempts(self) -> tuple[Attempt, ...]:
        """The fast attempts in the order they win: the column's formats, then ISO 8601's fixed-width forms."""
        own = tuple(Attempt(fmt) for fmt in self.shapes)
        if self.is_date:
            return own
        return (
            *own,
            Attempt("%Y-%m-%d"),
            Attempt("%Y-%m-%dT%H:%M"),
            Attempt("%Y-%m-%d %H:%M"),
            Attempt("%Y-%m-%dT%H:%M:%S", head=True),
            Attempt("%Y-%m-%d %H:%M:%S", head=True),
        )

    @property
    def tail_bit(self) -> int:
        """The route bit of ISO 8601 text longer than its head: a head attempt then applies the tail."""
        return 1 << len(self.attempts)

    def stages(self, value: str, out: str) -> list[list[pl.Expr]]:
        """Plan steps leaving the parsed column `out`, reading cleaned text from column `value`.

        1. the text's length, and its characters at the positions the shapes check;
        2. the route: which attempts the value's shape allows;
        3. per batch, each route's values parsed by its attempts, then every format on what is left.
        """
        text, length = pl.col(value), pl.col(f"__{out}_len")
        positions = {pos for shape in self.shapes.values() for pos, _ in shape.marks}
        if not self.is_date:
            positions |= {4, 10}
        at = {pos: pl.col(f"__{out}_at{pos}") for pos in sorted(positions)}
        first = [
            text.str.len_bytes().alias(f"__{out}_len"),
            *(text.str.slice(p, 1).alias(f"__{out}_at{p}") for p in at),
        ]
        guards = self._guards(length, at)
        route = pl.sum_horizontal(guard.fill_null(False).cast(pl.UInt32) * (1 << k) for k, guard in enumerate(guards))
        batch = pl.struct(text.alias(TEXT), pl.col(f"__{out}_route").alias(ROUTE))
        parsed = batch.map_batches(self.parse_batch, return_dtype=self.dtype, is_elementwise=True)
        return [first, [route.alias(f"__{out}_route")], [parsed.alias(out)]]

    def _guards(self, length: pl.Expr, at: dict[int, pl.Expr]) -> list[pl.Expr]:
        """One condition per attempt (in order), then the tail bit's: when a value has that attempt's shape."""
        guards = []
        for shape in self.shapes.values():
            guard = length.is_in(shape.lengths) if len(shape.lengths) > 1 else length == shape.lengths[0]
            for pos, char in shape.marks:
                guard = guard & (at[pos] == char)
            guards.append(guard)
        if self.is_date:
            return guards
        dated, t, space = at[4] == "-", at[10] == "T", at[10] == " "
        headed = dated & (length >= HEAD)
        return [
            *guards,
            dated & (length == 10),
            dated & (length == 16) & t,
            dated & (length == 16) & space,
            headed & t,
            headed & space,
            dated & (length > HEAD),
        ]

    def parse_batch(self, batch: pl.Series) -> pl.Series:
        """Parse one streamed batch of struct(text, route): each route's values by its attempts, then the rest."""
        frame = batch.struct.unnest()
        routes = tuple(sorted(frame.get_column(ROUTE).unique().drop_nulls().to_list()))
        values = frame.select(self._batch_plan(routes)).to_series()
        text = frame.get_column(TEXT)
        if values.null_count() == text.null_count():
            return values
        left = (values.is_null() & text.is_not_null()).arg_true()
        rest = text.gather(left).to_frame(TEXT).select(self._fallback).to_series()
        return values.scatter(left, rest)

    @cached_property
    def _fallback(self) -> pl.Expr:
        return self.parse_all(pl.col(TEXT))

    @cached_property
    def _plans(self) -> dict[tuple[int, ...], pl.Expr]:
        return {}

    def _batch_plan(self, routes: tuple[int, ...]) -> pl.Expr:
        """Each route's values parsed by its attempts, in one column back in row order (cached per route set)."""
        plan = self._plans.get(routes)
        if plan is not None:
            return plan
        text, route = pl.col(TEXT), pl.col(ROUTE)
        row = pl.int_range(pl.len(), dtype=pl.get_index_type())
        values, rows, parsed = [], [], []
        for code in routes:
            value = self._route_value(code, text.filter(route == code))
            if value is not None:
                parsed.append(code)
                values.append(value)
                rows.append(row.filter(route == code))
        others = ~route.is_in(parsed) | route.is_null()
        values.append(pl.when(row.filter(others).is_null()).then(pl.lit(None, self.dtype)))
        rows.append(row.filter(others))
        plan = pl.concat(values).sort_by(pl.concat(rows)).alias(TEXT)
        if len(self._plans) < 256:
            self._plans[routes] = plan
        return plan

    def _route_value(self, code: int, text: pl.Expr) -> pl.Expr | None:
        """The first result of the attempts `code` allows, on `text`; None if it allows none."""
        tail = bool(code & self.tail_bit)
        seen: set[tuple[str, bool]] = set()
        results = []
        for bit, attempt in enumerate(self.attempts):
            split = attempt.head and tail
            if not code & (1 << bit) or (attempt.fmt, split) in seen:
                continue
            seen.add((attempt.fmt, split))
            results.append(self._with_tail(text, attempt.fmt) if split else self.parse(text, attempt.fmt))
        if not results:
            return None
        return results[0] if len(results) == 1 else pl.coalesce(results)

    def _with_tail(self, text: pl.Expr, fmt: str) -> pl.Expr:
        """ISO 8601 without chrono's slow path: the head parsed by `fmt`, moved by the tail's fraction and zone.

        Null if the tail is not ISO 8601 (or its zone is out of range). The struct keeps the regex from being
        evaluated once per field.
        """
        parts = pl.struct(
            self.parse(text.str.head(HEAD), fmt).alias("iso"),
            text.str.slice(HEAD).str.extract_groups(ISO_TAIL).alias("tail"),
        )
        tail = pl.field("tail")
        frac, sign = tail.struct.field("frac"), tail.struct.field("sign")
        micros = frac.str.pad_end(6, "0").str.head(6).cast(pl.Int64).fill_null(0)
        hours = tail.struct.field("hh").cast(pl.Int64)
        minutes = tail.struct.field("mm").cast(pl.Int64).fill_null(0)
        offset = (hours * 60 + minutes) * pl.when(sign == "-").then(-60_000_000).otherwise(60_000_000)
        matched = frac.is_not_null() | tail.struct.field("z").is_not_null() | sign.is_not_null()
        sane = hours.is_null() | ((hours < 24) & (minutes < 60))
        moved = pl.field("iso") + (micros - offset.fill_null(0)).cast(pl.Duration("us"))
        return parts.struct.with_fields(pl.when(matched & sane).then(moved).alias(ROW)).struct.field(ROW)
