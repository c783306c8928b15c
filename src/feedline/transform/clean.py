"""Per-column polars expressions: clean the raw text, cast it to the contract type, explain a rejection."""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass

import polars as pl

from feedline.contract import Case, Column, ColumnType, Feed
from feedline.transform.times import TimeParser

INT_TYPES = {"int": pl.Int32, "bigint": pl.Int64}
NUMBER = r"^[+-]?(?:\d+(?:\.\d*)?|\.\d+)$"
INTEGER = r"^[+-]?\d+$"
QUOTED_CHARS = 100
"""A rejection reason quotes at most this many characters of the value (the rejected row keeps all of it)."""


def decimal_pattern(ctype: ColumnType) -> str:
    """A regex of the text a decimal(p,s) holds exactly: at most p-s integer digits, s significant decimals.

    Values with more decimals than the scale are rejected rather than rounded (trailing zeros are fine):
    an amount silently changed by the load is worse than a rejected row someone can fix. Digits are ASCII
    ([0-9], not Unicode's \\d): the decimal cast refuses other digits anyway, and polars compiles the regex
    for every streamed batch, where Unicode's `\\d{1,10}` took millions of instructions each time.
    """
    scale = ctype.scale or 0
    digits = (ctype.precision or 0) - scale
    whole = rf"0*[0-9]{{1,{digits}}}" if digits else "0*"
    if scale == 0:
        return rf"^[+-]?{whole}(?:\.0*)?$" if digits else r"^[+-]?0+(?:\.0*)?$"
    return rf"^[+-]?(?:{whole}(?:\.[0-9]{{0,{scale}}}0*)?|\.[0-9]{{1,{scale}}}0*)$"


def polars_type(ctype: ColumnType) -> pl.DataType:
    """The polars type a contract type is written as in the clean Parquet."""
    if ctype.name == "decimal":
        return pl.Decimal(ctype.precision, ctype.scale or 0)
    return {
        "string": pl.String(),
        "int": pl.Int32(),
        "bigint": pl.Int64(),
        "float": pl.Float64(),
        "bool": pl.Boolean(),
        "date": pl.Date(),
        "timestamp": pl.Datetime("us"),
    }[ctype.name]


def _any_case(tokens: tuple[str, ...], limit: int = 512) -> list[str] | None:
    """Every upper/lower spelling of the tokens, so bool matching needs no lowercasing (which is slow)."""
    spellings: set[str] = set()
    for token in tokens:
        options = [sorted({c.lower(), c.upper()}) for c in token.lower()]
        if len(spellings) + 2 ** sum(len(o) > 1 for o in options) > limit:
            return None
        spellings.update("".join(chars) for chars in itertools.product(*options))
    return sorted(spellings)


@dataclass(frozen=True)
class ColumnRule:
    """How one contract column is cleaned and typed, bound to the feed's defaults."""

    column: Column
    null_tokens: tuple[str, ...]

    @classmethod
    def of(cls, column: Column, feed: Feed) -> ColumnRule:
        tokens = column.null_tokens if column.null_tokens is not None else feed.csv.null_tokens
        return cls(column, tuple(tokens))

    def trimmed(self, raw: pl.Expr) -> pl.Expr:
        """strip_chars (every listed character, anywhere), then surrounding whitespace."""
        value = raw
        chars = self.column.strip_chars
        if len(chars) == 1:
            value = value.str.replace_all(chars, "", literal=True)
        elif chars:
            value = value.str.replace_all(f"[{re.escape(chars)}]", "")
        return value.str.strip_chars() if self.column.trim else value

    def normalised(self, trimmed: pl.Expr) -> pl.Expr:
        """Null tokens (compared after trimming, case-sensitive) become null; then lower/upper case."""
        value = trimmed
        if self.null_tokens:
            value = pl.when(value.is_in(self.null_tokens)).then(None).otherwise(value)
        if self.column.case is Case.lower:
            value = value.str.to_lowercase()
        elif self.column.case is Case.upper:
            value = value.str.to_uppercase()
        return value

    def cleaned(self, raw: pl.Expr) -> pl.Expr:
        return self.normalised(self.trimmed(raw))

    def stages(self, value: str, out: str) -> list[list[pl.Expr]]:
        """Plan steps turning cleaned text in column `value` into the typed column `out`."""
        if self.column.type.name in ("date", "timestamp"):
            return TimeParser(self.column).stages(value, out)
        return [[self.typed(pl.col(value)).alias(out)]]

    def typed(self, value: pl.Expr) -> pl.Expr:
        """Cast cleaned text to the contract type; text that does not fit becomes null.

        NaN and infinities do not fit a float: exports write them for a failed computation, and every
        warehouse sorts, sums and compares them differently, so they are rejected rather than loaded.
        """
        ctype = self.column.type
        kind = ctype.name
        if kind == "string":
            return value
        if kind in INT_TYPES:
            return value.cast(INT_TYPES[kind], strict=False)
        if kind == "float":
            number = value.cast(pl.Float64, strict=False)
            return pl.when(number.is_finite()).then(number)
        if kind == "bool":
            trues, falses = _any_case(self.column.true_values), _any_case(self.column.false_values)
            if trues is None or falses is None:
                value = value.str.to_lowercase()
                trues = [v.lower() for v in self.column.true_values]
                falses = [v.lower() for v in self.column.false_values]
            return pl.when(value.is_in(trues)).then(True).when(value.is_in(falses)).then(False)
        if kind == "decimal":
            fits = value.str.contains(decimal_pattern(ctype))
            return pl.when(fits).then(value).cast(polars_type(ctype), strict=False)
        return TimeParser(self.column).parse_all(value)

    def reason(self, raw: pl.Expr, value: pl.Expr | None = None, typed: pl.Expr | None = None) -> pl.Expr:
        """Why this column's value rejects its row, or null. Meant for the few rejected rows only.

        Pass the cleaned text (`value`) and the typed value (`typed`) when the plan has them: cleaning and
        typing again on each streamed batch of rejected rows cost ~6% of the orders transform.
        """
        col = self.column
        value = self.cleaned(raw) if value is None else value
        typed = self.typed(value) if typed is None else typed
        shown = (
            pl.when(raw.str.len_chars() > QUOTED_CHARS)
            .then(pl.concat_str([raw.str.slice(0, QUOTED_CHARS), pl.lit("…")]))
            .otherwise(raw)
        )
        quoted = pl.concat_str([pl.lit(f"{col.name}: '"), shown, pl.lit("' ")])
        missing = pl.lit(f"{col.name}: required value is missing")
        invalid = pl.concat_str([quoted, self._what_is_wrong(value)])
        bad = pl.when(value.is_not_null() & typed.is_null()).then(invalid)
        if col.nullable:
            return bad.otherwise(pl.lit(None, pl.String))
        return bad.when(value.is_null()).then(missing).otherwise(pl.lit(None, pl.String))

    def _what_is_wrong(self, value: pl.Expr) -> pl.Expr:
        col = self.column
        kind = col.type.name
        if kind in INT_TYPES:
            return (
                pl.when(value.str.contains(INTEGER))
                .then(pl.lit(f"is out of range for {kind}"))
                .otherwise(pl.lit(f"is not an integer ({kind})"))
            )
        if kind == "decimal":
            return (
                pl.when(value.str.contains(NUMBER))
                .then(pl.lit(f"does not fit {col.type} (too many integer digits or decimals)"))
                .otherwise(pl.lit(f"is not a {col.type}"))
            )
        if kind == "float":
            return (
                pl.when(value.cast(pl.Float64, strict=False).is_not_null())
                .then(pl.lit("is not a finite number (float)"))
                .otherwise(pl.lit("is not a float"))
            )
        if kind == "bool":
            trues, falses = "/".join(col.true_values), "/".join(col.false_values)
            return pl.lit(f"is not a bool (true: {trues}, false: {falses})")
        if kind in ("date", "timestamp"):
            tried = "".join(f"{fmt}, " for fmt in col.formats)
            return pl.lit(f"is not a {kind} (tried {tried}ISO 8601)")
        return pl.lit(f"is not a {col.type}")
