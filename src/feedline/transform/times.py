"""Parse date and timestamp text against several formats fast: each format first tries values of its shape."""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from feedline.contract import Column
from feedline.transform.shapes import shape_of

ISO_NAIVE = ("%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M", "%Y-%m-%d")
ISO_AWARE = ("%Y-%m-%dT%H:%M:%S%.f%#z", "%Y-%m-%d %H:%M:%S%.f%#z")
ZONED = ("%z", "%#z", "%:z", "%::z", "%Z")
ISO_TAIL = r"^(?:\.(?P<frac>\d{1,9}))?(?:(?P<z>[Zz])|(?P<sign>[+-])(?P<hh>\d{2})(?::?(?P<mm>\d{2}))?)?$"
"""What may follow `YYYY-MM-DDTHH:MM:SS` in ISO 8601: a fraction, then a zone (Z, +hh, +hhmm, +hh:mm)."""


def formats_of(column: Column) -> tuple[str, ...]:
    """The formats tried, in order, for a date or timestamp column: its own, then ISO 8601."""
    iso = ("%Y-%m-%d",) if column.type.name == "date" else (*ISO_NAIVE, *ISO_AWARE)
    return tuple(dict.fromkeys((*column.formats, *iso)))


@dataclass(frozen=True)
class TimeParser:
    """Parses one date/timestamp column: its formats in order, then ISO 8601; the first that parses wins.

    A failed parse costs polars ~10x a successful one, and trying N formats on every value means N-1 failures
    a value. So each format is first tried only on values of its usual shape (length and separators at fixed
    places, zero-padded fields), which almost never fail; ISO 8601 with a fraction or zone is split into a
    fixed-width head (fast) and a tail read by regex. What is left (mostly invalid text) is tried against
    every format in order. `stages` spreads this over plan steps so that nothing is computed twice.
    """

    column: Column

    @property
    def formats(self) -> tuple[str, ...]:
        return formats_of(self.column)

    @property
    def is_date(self) -> bool:
        return self.column.type.name == "date"

    def parse(self, value: pl.Expr, fmt: str) -> pl.Expr:
        stamp = value.str.to_datetime(fmt, time_unit="us", strict=False, cache=False)
        if any(zone in fmt for zone in ZONED):
            stamp = stamp.dt.convert_time_zone("UTC").dt.replace_time_zone(None)
        return stamp.dt.date() if self.is_date else stamp

    def parse_all(self, value: pl.Expr) -> pl.Expr:
        """Every format in order on every value: exact but slow, for the few values left over."""
        return pl.coalesce([self.parse(value, fmt) for fmt in self.formats])

    def stages(self, value: str, out: str) -> list[list[pl.Expr]]:
        """Plan steps leaving the parsed column `out`, reading cleaned text from column `value`.

        1. the text's length, and its characters at the positions the shapes check;
        2. each format on values of its shape; for timestamps, ISO 8601's head and tail;
        3. the tail applied to the head, and the first result;
        4. every format, in order, on what is still unparsed.
        """
        text, length = pl.col(value), pl.col(f"__{out}_len")
        # polars string kernels also pay for masked-out values, so every extra kernel costs ~10-50 ns a row
        own = self.column.formats if not self.is_date else self.formats
        shapes = {fmt: shape for fmt in own if (shape := shape_of(fmt)) is not None}
        positions = {pos for shape in shapes.values() for pos, _ in shape.marks} | (
            {4, 10} if not self.is_date else set()
        )
        at = {pos: pl.col(f"__{out}_at{pos}") for pos in sorted(positions)}
        first = [
            text.str.len_bytes().alias(f"__{out}_len"),
            *(text.str.slice(p, 1).alias(f"__{out}_at{p}") for p in at),
        ]
        fast = []
        for fmt, shape in shapes.items():
            guard = length.is_in(shape.lengths) if len(shape.lengths) > 1 else length == shape.lengths[0]
            for pos, char in shape.marks:
                guard = guard & (at[pos] == char)
            fast.append(self.parse(pl.when(guard).then(text), fmt))
        nothing = pl.lit(None, pl.Date() if self.is_date else pl.Datetime("us"))
        if self.is_date:
            second, third = [pl.coalesce([*fast, nothing]).alias(f"__{out}_fast")], []
        else:
            second = [pl.coalesce([*fast, nothing]).alias(f"__{out}_own"), *self._iso(text, length, at, out)]
            third = [pl.coalesce(pl.col(f"__{out}_own"), self._iso_tail(out)).alias(f"__{out}_fast")]
        done = pl.col(f"__{out}_fast")
        final = pl.coalesce(done, self.parse_all(pl.when(done.is_null()).then(text))).alias(out)
        return [step for step in (first, second, third, [final]) if step]

    def _iso(self, text: pl.Expr, length: pl.Expr, at: dict[int, pl.Expr], out: str) -> list[pl.Expr]:
        """ISO 8601 without chrono's slow path: a fixed-width head parse, and the tail split by regex."""
        dated, t, space = at[4] == "-", at[10] == "T", at[10] == " "
        longer = pl.when(dated & (length > 19)).then(text.str.head(19))
        head = pl.when(dated & (length == 19)).then(text).otherwise(longer)
        parsed = [
            self.parse(pl.when(dated & (length == 10)).then(text), "%Y-%m-%d"),
            self.parse(pl.when(dated & (length == 16) & t).then(text), "%Y-%m-%dT%H:%M"),
            self.parse(pl.when(dated & (length == 16) & space).then(text), "%Y-%m-%d %H:%M"),
            self.parse(pl.when(t).then(head), "%Y-%m-%dT%H:%M:%S"),
            self.parse(pl.when(space).then(head), "%Y-%m-%d %H:%M:%S"),
        ]
        tail = pl.when(dated & (length > 19)).then(text.str.slice(19)).str.extract_groups(ISO_TAIL)
        return [pl.coalesce(parsed).alias(f"__{out}_iso"), tail.alias(f"__{out}_tail")]

    def _iso_tail(self, out: str) -> pl.Expr:
        """The ISO head moved by the tail's fraction and zone offset; null if the tail is not ISO."""
        iso, tail, length = pl.col(f"__{out}_iso"), pl.col(f"__{out}_tail"), pl.col(f"__{out}_len")
        frac, sign = tail.struct.field("frac"), tail.struct.field("sign")
        micros = frac.str.pad_end(6, "0").str.head(6).cast(pl.Int64).fill_null(0)
        hours, minutes = (
            tail.struct.field("hh").cast(pl.Int32),
            tail.struct.field("mm").cast(pl.Int32).fill_null(0),
        )
        offset = (
            pl.when(sign == "-").then(-(hours * 60 + minutes)).otherwise(hours * 60 + minutes).fill_null(0)
        )
        matched = frac.is_not_null() | tail.struct.field("z").is_not_null() | sign.is_not_null()
        sane = hours.is_null() | ((hours < 24) & (minutes < 60))
        moved = iso + pl.duration(microseconds=micros) - pl.duration(minutes=offset)
        return pl.when(length <= 19).then(iso).when(matched & sane).then(moved)
