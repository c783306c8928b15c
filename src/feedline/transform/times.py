"""Parse date and timestamp text against several formats fast: each format first tries values of its shape."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import polars as pl

from feedline.contract import Column
from feedline.transform.shapes import shape_of

ISO_NAIVE = ("%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M", "%Y-%m-%d")
ISO_AWARE = ("%Y-%m-%dT%H:%M:%S%.f%#z", "%Y-%m-%d %H:%M:%S%.f%#z")
ZONED = ("%z", "%#z", "%:z", "%::z", "%Z")
ISO_TAIL = (
    r"^(?:\.(?P<frac>[0-9]{1,9}))?(?:(?P<z>[Zz])|(?P<sign>[+-])(?P<hh>[0-9]{2})(?::?(?P<mm>[0-9]{2}))?)?$"
)
"""What may follow `YYYY-MM-DDTHH:MM:SS` in ISO 8601: a fraction, then a zone (Z, +hh, +hhmm, +hh:mm).

ASCII digits only: other digits (Unicode's `\\d`) would fail the integer casts below, and polars compiles the
regex for every streamed batch, where the Unicode digit class made it several times dearer."""
HEAD = 19
"""Length of `YYYY-MM-DDTHH:MM:SS`, the fixed-width head of ISO 8601 timestamps with a fraction or zone."""
FAST, TEXT, ROW = "fast", "text", "row"


def formats_of(column: Column) -> tuple[str, ...]:
    """The formats tried, in order, for a date or timestamp column: its own, then ISO 8601."""
    iso = ("%Y-%m-%d",) if column.type.name == "date" else (*ISO_NAIVE, *ISO_AWARE)
    return tuple(dict.fromkeys((*column.formats, *iso)))


@dataclass(frozen=True)
class TimeParser:
    """Parses one date/timestamp column: its formats in order, then ISO 8601; the first that parses wins.

    A failed parse costs polars ~3x a successful one, and trying N formats on every value means N-1 failures
    a value. So each format is first tried only on values of its usual shape (length and separators at fixed
    places, zero-padded fields), which almost never fail; ISO 8601 with a fraction or zone is split into a
    fixed-width head (fast) and a tail read by regex. What is left (mostly invalid text) is tried against
    every format in order, per streamed batch and only when the batch has such values: polars kernels also
    pay for masked-out (null) values, and trying every format on all of them cost ~70 ns a row.
    `stages` spreads this over plan steps so that nothing is computed twice.
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

    def stages(self, value: str, out: str) -> list[list[pl.Expr]]:
        """Plan steps leaving the parsed column `out`, reading cleaned text from column `value`.

        1. the text's length, and its characters at the positions the shapes check;
        2. each format on values of its shape; for timestamps, ISO 8601's head and tail;
        3. the tail applied to the head, and the first result;
        4. per batch, every format, in order, on what is still unparsed.
        """
        text, length = pl.col(value), pl.col(f"__{out}_len")
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
        nothing = pl.lit(None, self.dtype)
        if self.is_date:
            second, third = [pl.coalesce([*fast, nothing]).alias(f"__{out}_fast")], []
        else:
            iso = self._iso(text, length, at, out, covered=set(shapes))
            second = [pl.coalesce([*fast, nothing]).alias(f"__{out}_own"), *iso]
            third = [pl.coalesce(pl.col(f"__{out}_own"), self._iso_tail(out)).alias(f"__{out}_fast")]
        batch = pl.struct(pl.col(f"__{out}_fast").alias(FAST), text.alias(TEXT))
        final = batch.map_batches(self.fill_batch, return_dtype=self.dtype, is_elementwise=True).alias(out)
        return [step for step in (first, second, third, [final]) if step]

    def fill_batch(self, batch: pl.Series) -> pl.Series:
        """One streamed batch of struct(fast, text): the fast results, with every format tried on the rest.

        A plain expression would try every format on every row of every batch, nulls included; most
        batches have nothing left to parse, and the others only a few values.
        """
        frame = batch.struct.unnest()
        fast = frame.get_column(FAST)
        if fast.null_count() == frame.get_column(TEXT).null_count():
            return fast
        rows = frame.with_row_index(ROW).filter(pl.col(FAST).is_null() & pl.col(TEXT).is_not_null())
        rest = rows.select(self._every_format).to_series()
        return fast.clone().scatter(rows.get_column(ROW), rest)

    @cached_property
    def _every_format(self) -> pl.Expr:
        return self.parse_all(pl.col(TEXT))

    def _iso(
        self, text: pl.Expr, length: pl.Expr, at: dict[int, pl.Expr], out: str, covered: set[str]
    ) -> list[pl.Expr]:
        """ISO 8601 without chrono's slow path: a fixed-width head parse, and the tail split by regex.

        A 19-byte head format that is also one of the column's own formats was already tried, on exactly
        these values, by the own-format step: here it only reads the head of longer text.
        """
        dated, t, space = at[4] == "-", at[10] == "T", at[10] == " "
        longer = pl.when(dated & (length > HEAD)).then(text.str.head(HEAD))
        head = pl.when(dated & (length == HEAD)).then(text).otherwise(longer)
        heads = {
            fmt: longer if fmt in covered else head for fmt in ("%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S")
        }
        parsed = [
            self.parse(pl.when(dated & (length == 10)).then(text), "%Y-%m-%d"),
            self.parse(pl.when(dated & (length == 16) & t).then(text), "%Y-%m-%dT%H:%M"),
            self.parse(pl.when(dated & (length == 16) & space).then(text), "%Y-%m-%d %H:%M"),
            self.parse(pl.when(t).then(heads["%Y-%m-%dT%H:%M:%S"]), "%Y-%m-%dT%H:%M:%S"),
            self.parse(pl.when(space).then(heads["%Y-%m-%d %H:%M:%S"]), "%Y-%m-%d %H:%M:%S"),
        ]
        tail = pl.when(dated & (length > HEAD)).then(text.str.slice(HEAD)).str.extract_groups(ISO_TAIL)
        return [pl.coalesce(parsed).alias(f"__{out}_iso"), tail.alias(f"__{out}_tail")]

    def _iso_tail(self, out: str) -> pl.Expr:
        """The ISO head moved by the tail's fraction and zone offset; null if the tail is not ISO."""
        iso, tail, length = pl.col(f"__{out}_iso"), pl.col(f"__{out}_tail"), pl.col(f"__{out}_len")
        frac, sign = tail.struct.field("frac"), tail.struct.field("sign")
        micros = frac.str.pad_end(6, "0").str.head(6).cast(pl.Int64).fill_null(0)
        hours = tail.struct.field("hh").cast(pl.Int64)
        minutes = tail.struct.field("mm").cast(pl.Int64).fill_null(0)
        offset = (hours * 60 + minutes) * pl.when(sign == "-").then(-60_000_000).otherwise(60_000_000)
        matched = frac.is_not_null() | tail.struct.field("z").is_not_null() | sign.is_not_null()
        sane = hours.is_null() | ((hours < 24) & (minutes < 60))
        moved = iso + (micros - offset.fill_null(0)).cast(pl.Duration("us"))
        return pl.when(length <= HEAD).then(iso).when(matched & sane).then(moved)
