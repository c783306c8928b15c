"""Parse date and timestamp text against several formats fast: try each format on values of its shape first.

A failed parse costs polars ~10x a successful one, and trying N formats on every value means N-1 failures
a value. So each format is first tried only on values of its usual shape (length and separator positions
with zero-padded fields), which almost never fail; whatever no format took is then tried against every
format in order. Formats are tried in their declared order, then ISO 8601.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass

import polars as pl

from feedline.contract import Column

ISO_NAIVE = ("%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M", "%Y-%m-%d")
ISO_AWARE = ("%Y-%m-%dT%H:%M:%S%.f%#z", "%Y-%m-%d %H:%M:%S%.f%#z")
ZONED = ("%z", "%#z", "%:z", "%::z", "%Z")
# Usual widths of each directive's text; a directive missing here (e.g. %B, a month name) has no usual
# width, and formats using it are tried on every value not parsed yet.
WIDTHS: dict[str, tuple[int, ...]] = {
    **dict.fromkeys(("Y", "G"), (4,)),
    **dict.fromkeys(
        ("m", "d", "H", "M", "S", "y", "I", "e", "k", "l", "C", "g", "U", "W", "V", "p", "P"), (2,)
    ),
    **dict.fromkeys(("j",), (3,)),
    **dict.fromkeys(("b", "h", "a"), (3,)),
    "F": (10,),
    "T": (8,),
    "R": (5,),
    "D": (8,),
    "f": (6, 9, 3),
    ".f": (0, 4, 7, 10),
    ".3f": (4,),
    ".6f": (7,),
    ".9f": (10,),
    "3f": (3,),
    "6f": (6,),
    "9f": (9,),
    "z": (5,),
    ":z": (6,),
    "#z": (1, 6, 5, 3),
    "%": (1,),
    "u": (1,),
    "w": (1,),
}
DIRECTIVE = re.compile(r"%([.:#]?\d?[A-Za-z%])")
MAX_MARKS = 2


@dataclass(frozen=True)
class Shape:
    """The usual lengths of a format's text and a few (position, character) separators it always has."""

    lengths: tuple[int, ...]
    marks: tuple[tuple[int, str], ...]


def formats_of(column: Column) -> tuple[str, ...]:
    """The formats tried, in order, for a date or timestamp column: its own, then ISO 8601."""
    iso = ("%Y-%m-%d",) if column.type.name == "date" else (*ISO_NAIVE, *ISO_AWARE)
    return tuple(dict.fromkeys((*column.formats, *iso)))


def shape_of(fmt: str) -> Shape | None:
    """The usual shape of `fmt`'s text, or None when a directive has no usual width."""
    widths: list[tuple[int, ...]] = []
    marks: dict[str, int] = {}
    fixed: int | None = 0
    for literal, directive in _tokens(fmt):
        if directive is None:
            for char in literal:
                if fixed is not None and not char.isdigit() and char not in marks:
                    marks[char] = fixed
                fixed = None if fixed is None else fixed + 1
            widths.append((len(literal),))
            continue
        options = WIDTHS.get(directive)
        if options is None:
            return None
        widths.append(options)
        fixed = fixed + options[0] if fixed is not None and len(options) == 1 else None
    lengths = tuple(sorted({sum(combo) for combo in itertools.product(*widths)}))
    chosen = sorted(marks.items(), key=lambda item: item[1])[:MAX_MARKS]
    return Shape(lengths, tuple((pos, char) for char, pos in chosen))


def _tokens(fmt: str) -> list[tuple[str, str | None]]:
    tokens: list[tuple[str, str | None]] = []
    position = 0
    for match in DIRECTIVE.finditer(fmt):
        if match.start() > position:
            tokens.append((fmt[position : match.start()], None))
        tokens.append(("", match.group(1)))
        position = match.end()
    if position < len(fmt):
        tokens.append((fmt[position:], None))
    return tokens


@dataclass(frozen=True)
class TimeParser:
    """Parses one date/timestamp column; `stages` spreads the work over plan steps so none is done twice."""

    column: Column

    @property
    def formats(self) -> tuple[str, ...]:
        return formats_of(self.column)

    def parse(self, value: pl.Expr, fmt: str) -> pl.Expr:
        stamp = value.str.to_datetime(fmt, time_unit="us", strict=False, cache=False)
        if any(zone in fmt for zone in ZONED):
            stamp = stamp.dt.convert_time_zone("UTC").dt.replace_time_zone(None)
        return stamp.dt.date() if self.column.type.name == "date" else stamp

    def parse_all(self, value: pl.Expr) -> pl.Expr:
        """Every format in order on every value: exact but slow, for the few rows left over or rejected."""
        return pl.coalesce([self.parse(value, fmt) for fmt in self.formats])

    def stages(self, value: str, out: str) -> list[list[pl.Expr]]:
        """Plan steps that leave the parsed column `out`, reading cleaned text from column `value`."""
        text = pl.col(value)
        shapes = {fmt: shape_of(fmt) for fmt in self.formats}
        positions = sorted({pos for shape in shapes.values() if shape for pos, _ in shape.marks})
        chars = [text.str.slice(pos, 1).alias(f"{out}__at{pos}") for pos in positions]
        length = text.str.len_bytes()
        fast: list[pl.Expr] = []
        for fmt, shape in shapes.items():
            if shape is None:
                continue
            guard = length.is_in(shape.lengths) if len(shape.lengths) > 1 else length == shape.lengths[0]
            for pos, char in shape.marks:
                guard = guard & (pl.col(f"{out}__at{pos}") == char)
            fast.append(self.parse(pl.when(guard).then(text), fmt))
        first = (
            pl.coalesce(fast).alias(f"{out}__fast")
            if fast
            else pl.lit(None, self._dtype()).alias(f"{out}__fast")
        )
        done = pl.col(f"{out}__fast")
        rest = pl.when(done.is_null()).then(text)
        final = pl.coalesce([done, self.parse_all(rest)]).alias(out)
        return [chars, [first], [final]]

    def _dtype(self) -> pl.DataType:
        return pl.Date() if self.column.type.name == "date" else pl.Datetime("us")
