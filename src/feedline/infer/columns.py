"""One column of a sample: its name, type, nullability, cleaning and row rules, each with what it rests on.

Types are tried from the narrowest (bool, int, decimal, float, date, timestamp) to string; the guess is then
checked with the transform's own `ColumnRule` on every sampled value and falls back to text if any value
would be rejected, so inference and load can never disagree.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import polars as pl

from feedline.contract import DEFAULT_NULL_TOKENS, Column
from feedline.transform.clean import INTEGER, NUMBER, ColumnRule
from feedline.transform.read import identifiers as identifiers  # shared with schema_policy evolve
from feedline.transform.times import TimeParser

EXTRA_NULL_TOKENS = ("?", "??", "--", "#N/A", "N.A.", "n.a.", "NaN", "nan", "(null)", "#NULL!")
"""Placeholders beyond the feed defaults that exports write for 'no value'; a column that has them gets
its own `null_tokens`."""
STRIP_SYMBOLS = "$,%#"
THOUSANDS = r"^[+-]?\d{1,3}(?:,\d{3})+(?:\.\d*)?$"
FLOAT = r"^[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?$"
BOOL_TOKENS = ("true", "false", "t", "f", "yes", "no", "y", "n", "1", "0")
INT32 = (-(2**31), 2**31 - 1)
DECIMAL_HEADROOM = 2
"""Integer digits added to the widest decimal seen, so that a slightly larger amount still fits."""
MAX_DECIMAL_SCALE = 9
LOW_CARDINALITY = 10
CASE_CARDINALITY = 20
PROBE = 200
"""Date and time formats are first tried on this many values; only a probe that parses is tried in full."""
YEARS = (1800, 2200)
"""A parsed date outside these years means the format misread the text (e.g. '24' as the year 24)."""
DATES = (
    "%d/%m/%Y", "%m/%d/%Y", "%Y/%m/%d", "%d.%m.%Y", "%d-%m-%Y", "%m-%d-%Y", "%Y.%m.%d",
    "%d/%m/%y", "%m/%d/%y", "%d.%m.%y", "%d %b %Y", "%d-%b-%Y", "%b %d %Y", "%b %d, %Y", "%d %B %Y",
    "%B %d, %Y",
)  # fmt: skip
TIMES = (" %H:%M", " %H:%M:%S", " %H:%M:%S%.f", " %I:%M %p", " %I:%M:%S %p", "T%H:%M:%S")
TIMESTAMPS = (*(d + t for d in DATES[:10] for t in TIMES), *DATES)
ISO = "ISO 8601"


@dataclass(frozen=True)
class Setting:
    """One inferred value and what it rests on (written as its YAML comment)."""

    value: Any
    note: str = ""


@dataclass
class ColumnGuess:
    """One column's inferred settings, and its sample values typed as the transform types them."""

    name: str
    header: str
    settings: dict[str, Setting]
    typed: pl.Series
    nulls: int

    @property
    def type(self) -> str:
        return str(self.settings["type"].value)


# --- names --------------------------------------------------------------------------------------------


def key_score(name: str) -> int:
    """How much a column name sounds like an identifier: id > *_id, *_key > code, sku > *_no."""
    if name == "id":
        return 4
    if name.endswith(("_id", "_key")):
        return 3
    if name in ("key", "code", "sku", "uuid", "guid") or name.endswith(("_code", "_sku", "_uuid")):
        return 2
    return 1 if name.endswith(("_no", "_nr", "_num", "_number", "_ref")) else 0


# --- one column ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TypeGuess:
    type: str
    note: str
    extra: dict[str, Setting] = field(default_factory=dict)


def guess_column(name: str, header: str, raw: pl.Series) -> ColumnGuess:
    """Type, nullability and cleaning of one column, checked with the transform's own column code."""
    text = raw.str.strip_chars()
    extra = tuple(t for t in EXTRA_NULL_TOKENS if (text == t).any())
    tokens = (*DEFAULT_NULL_TOKENS, *extra)
    is_null = text.is_null() | text.is_in(tokens)
    present = text.filter(~is_null)
    nulls = raw.len() - present.len()
    guess = guess_type(name, present)
    settings = _base_settings(name, header, raw.len(), nulls, _null_note(text, is_null), extra)
    if not present.len():
        settings["nullable"] = Setting(True, settings["nullable"].note)
    typed = _typed(settings, guess, raw, tokens)
    if typed is None:
        guess = TypeGuess("string", f"{guess.type} rejected some values in the transform: kept as text")
        typed = _typed(settings, guess, raw, tokens)
        assert typed is not None, "a string column cannot reject a value that is present"
    case = case_of(present) if guess.type == "string" else None
    if case is not None:
        guess = TypeGuess(guess.type, guess.note, {**guess.extra, "case": case})
        typed = _typed(settings, guess, raw, tokens)
        assert typed is not None, "lower/upper case cannot make a text value invalid"
    settings = {**settings, "type": Setting(guess.type, guess.note), **guess.extra}
    order = ("name", "source", "type", "nullable", "strip_chars", "case", "null_tokens", "formats")
    settings = {k: settings[k] for k in order if k in settings}
    return ColumnGuess(name, header, settings, typed, nulls)


def _base_settings(
    name: str, header: str, rows: int, nulls: int, null_note: str, extra: tuple[str, ...]
) -> dict[str, Setting]:
    settings = {"name": Setting(name)}
    if header != name:
        settings["source"] = Setting(header, "the header as written in the file")
    settings["nullable"] = Setting(nulls > 0, f"{nulls:,} nulls in {rows:,} rows{null_note}")
    if extra:
        shown = ", ".join(repr(t) for t in extra)
        settings["null_tokens"] = Setting(
            [*DEFAULT_NULL_TOKENS, *extra], f"{shown} seen as placeholders, besides the feed defaults"
        )
    return settings


def _null_note(text: pl.Series, is_null: pl.Series) -> str:
    counts = (
        text.filter(is_null)
        .fill_null("")
        .value_counts(name="n")
        .sort(["n", text.name], descending=[True, False])
    )
    seen = [f"{value!r} x{count:,}" for value, count in counts.iter_rows()][:5]
    return f" ({', '.join(seen)})" if seen else ""


def _typed(
    settings: dict[str, Setting], guess: TypeGuess, raw: pl.Series, tokens: tuple[str, ...]
) -> pl.Series | None:
    """The column typed by the transform's ColumnRule, or None if that rejects any value of the sample."""
    spec = {k: s.value for k, s in {**settings, **guess.extra}.items() if k not in ("source",)}
    rule = ColumnRule(Column.model_validate({**spec, "type": guess.type}), tokens)
    frame = raw.to_frame("v").select(
        rule.typed(rule.cleaned(pl.col("v"))).alias("typed"), rule.reason(pl.col("v")).alias("reason")
    )
    return frame.get_column("typed") if frame.get_column("reason").null_count() == frame.height else None


def guess_type(name: str, present: pl.Series) -> TypeGuess:
    """The narrowest type every present value reads as: bool, int/bigint, decimal, float, date, timestamp,
    else string."""
    if present.len() == 0:
        return TypeGuess("string", "every value is empty or a placeholder: type unknown, read as text")
    lower = present.str.to_lowercase()
    numeric = lower.str.contains(r"^\d+$").all()
    if lower.is_in(BOOL_TOKENS).all() and (not numeric or name.startswith(("is_", "has_"))):
        return TypeGuess("bool", f"only yes/no values: {_examples(present)}")
    strip, numbers, strip_note = strip_symbols(present)
    extra = {"strip_chars": Setting(strip, strip_note)} if strip else {}
    if numbers.str.contains(INTEGER).all():
        guess = _integer(name, numbers)
    elif numbers.str.contains(NUMBER).all():
        guess = _decimal(numbers)
    elif numbers.str.contains(FLOAT).all():
        guess = TypeGuess("float", f"numbers in exponent notation, e.g. {_first(numbers, 'e|E')!r}")
    else:
        times = guess_times(present)
        return times or TypeGuess("string", f"text, e.g. {_example(present)}")
    return TypeGuess(guess.type, guess.note, {**extra, **guess.extra}) if guess.type != "string" else guess


def strip_symbols(present: pl.Series) -> tuple[str, pl.Series, str]:
    """Currency, percent, hash and thousands symbols around numbers: what to strip, and the numbers.

    A comma is a thousands separator only where it groups digits by three; a decimal comma ('12,50')
    cannot be read as a number by the contract, so such a column stays text.
    """
    used = "".join(c for c in STRIP_SYMBOLS if present.str.contains(c, literal=True).any())
    if not used:
        return "", present, ""
    numbers = present.str.replace_all(f"[{re.escape(used)}]", "").str.strip_chars()
    if not numbers.str.contains(FLOAT).all():
        return "", present, ""
    bare = present.str.replace_all(r"[$%#\s]", "")
    if "," in used and not bare.filter(bare.str.contains(",", literal=True)).str.contains(THOUSANDS).all():
        return "", present, ""
    example = _first(present, f"[{re.escape(used)}]")
    return used, numbers, f"numbers written with {', '.join(repr(c) for c in used)}, e.g. {example!r}"


def _integer(name: str, numbers: pl.Series) -> TypeGuess:
    if numbers.str.contains(r"^[+-]?0\d").any():
        code = _first(numbers, r"^[+-]?0\d")
        return TypeGuess("string", f"digits with leading zeros (e.g. {code!r}) are codes, not numbers")
    values = numbers.cast(pl.Int64, strict=False)
    if values.null_count():
        digits = _int(numbers.str.replace(r"^[+-]", "").str.len_chars().max())
        if digits <= 38:
            return TypeGuess(f"decimal({digits},0)", f"whole numbers of up to {digits} digits, beyond bigint")
        return TypeGuess("string", f"whole numbers of {digits} digits do not fit any number type")
    low, high = _int(values.min()), _int(values.max())
    seen = f"whole numbers from {low:,} to {high:,}"
    if low < INT32[0] or high > INT32[1]:
        return TypeGuess("bigint", f"{seen}, beyond int")
    if key_score(name) >= 3:
        return TypeGuess("bigint", f"{seen}; bigint as identifiers grow")
    return TypeGuess("int", seen)


def _decimal(numbers: pl.Series) -> TypeGuess:
    parts = numbers.str.extract_groups(r"^[+-]?0*(\d*)(?:\.(\d*))?$").struct.unnest()
    whole = _int(parts.get_column("1").str.len_chars().max())
    scale = _int(parts.get_column("2").str.len_chars().fill_null(0).max())
    seen = f"up to {whole} integer digit(s) and {scale} decimal(s)"
    if scale > MAX_DECIMAL_SCALE or whole + scale > 38:
        return TypeGuess("float", f"{seen}: too many digits for an exact decimal")
    precision = min(38, max(whole + scale, 1) + DECIMAL_HEADROOM)
    return TypeGuess(f"decimal({precision},{scale})", f"{seen}; {DECIMAL_HEADROOM} integer digits added")


def guess_times(present: pl.Series) -> TypeGuess | None:
    """date or timestamp, with the strftime formats that together parse every value (ISO needs none)."""
    probe = present.head(PROBE)
    if not probe.str.contains(r"^\d|\d$").all() or _int(probe.str.len_chars().max()) > 40:
        return None
    for kind, candidates in (("date", DATES), ("timestamp", TIMESTAMPS)):
        chosen = _cover(kind, probe, (), greedy=candidates)
        if chosen is None:
            continue
        counts = _cover(kind, present, [f for f in chosen if f != ISO], greedy=candidates)
        if counts is None:
            continue
        formats = [f for f in counts if f != ISO]
        read = ", ".join(f"{n:,} as {f}" for f, n in counts.items())
        extra = {"formats": Setting(formats, _ambiguity(kind, present, formats))} if formats else {}
        return TypeGuess(kind, f"every value parses: {read}", extra)
    return None


def _parsed(kind: str, values: pl.Series, fmt: str) -> pl.Series:
    """Which values `fmt` (or ISO 8601) parses, as the transform parses them, to a plausible year."""
    parser = TimeParser(Column(name="v", type=kind))
    column = pl.col("v")
    stamp = parser.parse_all(column) if fmt == ISO else parser.parse(column, fmt)
    year = stamp.dt.year()
    ok = stamp.is_not_null() & year.is_between(*YEARS)
    return values.to_frame("v").select(ok.alias("ok")).get_column("ok")


def _cover(
    kind: str, values: pl.Series, ordered: Iterable[str], greedy: Iterable[str] = ()
) -> dict[str, int] | None:
    """Formats parsing every value: ISO first, then `ordered` in turn, then greedily the format of
    `greedy` parsing the most values left; None if some value parses with none of them."""
    counts: dict[str, int] = {}
    remaining = values
    for fmt in (ISO, *ordered):
        if remaining.len():
            ok = _parsed(kind, remaining, fmt)
            if ok.any():
                counts[fmt], remaining = int(ok.sum()), remaining.filter(~ok)
    candidates = list(greedy)
    while remaining.len():
        scored = [(int(_parsed(kind, remaining, f).sum()), -i, f) for i, f in enumerate(candidates)]
        best, _, fmt = max(scored)
        if best == 0:
            return None
        ok = _parsed(kind, remaining, fmt)
        counts[fmt], remaining = best, remaining.filter(~ok)
    return counts


def _ambiguity(kind: str, present: pl.Series, formats: list[str]) -> str:
    """Say so when day and month could be swapped in every value a format read."""
    notes = []
    for fmt in formats:
        swapped = fmt.replace("%d", "\0").replace("%m", "%d").replace("\0", "%m")
        if swapped == fmt:
            continue
        read = _parsed(kind, present, fmt)
        if not (read & ~_parsed(kind, present, swapped)).any():
            notes.append(f"{fmt} values also read as {swapped}: check which is meant")
    return "; ".join(notes) or "formats tried in order; ISO 8601 is always tried too"


def case_of(present: pl.Series) -> Setting | None:
    """`case` for a low-cardinality column whose values are written in several cases ('DE', 'de', 'Fr')."""
    folded, raised = present.str.to_lowercase(), present.str.to_uppercase()
    distinct, spellings = folded.n_unique(), present.n_unique()
    if distinct > CASE_CARDINALITY:
        return None
    lettered = folded != raised
    lower, upper = int((lettered & (present == folded)).sum()), int((lettered & (present == raised)).sum())
    mixed = int(lettered.sum()) - lower - upper
    if spellings == distinct and sum(n > 0 for n in (lower, upper, mixed)) < 2:
        return None
    choice = "upper" if upper > lower else "lower"
    if spellings > distinct:
        spelt = present.to_frame("s").with_columns(f=folded).unique().sort("f", "s")
        widest = (
            spelt.group_by("f", maintain_order=True).agg("s").sort(pl.col("s").list.len(), descending=True)
        )
        shown = ", ".join(repr(v) for v in widest.get_column("s")[0].to_list()[:4])
        seen = f"{spellings} spellings of {distinct} values (e.g. {shown})"
    else:
        seen = f"values written in several cases: {_examples(present)}"
    return Setting(choice, f"{seen}; most are {choice} case")


def add_rules(column: ColumnGuess, *, is_key: bool, rows: int) -> None:
    """Row rules the sample satisfies: accepted_values, min: 0, max_length."""
    values = column.typed.drop_nulls()
    if not values.len():
        return
    kind = column.type
    if kind == "string":
        distinct = values.n_unique()
        if not is_key and distinct <= LOW_CARDINALITY and values.len() >= 3 * distinct:
            column.settings["accepted_values"] = Setting(
                sorted(values.unique().to_list()), f"{distinct} distinct values in {rows:,} rows"
            )
            return
        longest = _int(values.str.len_chars().max())
        bound = 1 << max(3, math.ceil(math.log2(2 * max(longest, 1))))
        column.settings["max_length"] = Setting(bound, f"longest value: {longest:,} characters; doubled")
    elif kind in ("int", "bigint", "float") or kind.startswith("decimal"):
        low: Any = values.min()
        if not is_key and low is not None and low >= 0:
            column.settings["min"] = Setting(0, f"no negative value; smallest is {low}")


def _int(value: Any) -> int:
    """An integer aggregate of a Series (polars types aggregates as any Python literal)."""
    return int(value or 0)


def _first(values: pl.Series, pattern: str) -> str:
    return str(values.filter(values.str.contains(pattern)).head(1).item())


def _example(values: pl.Series) -> str:
    return repr(_clip(str(values.head(1).item())))


def _examples(values: pl.Series, limit: int = 4) -> str:
    return ", ".join(repr(v) for v in values.unique().sort().head(limit).to_list())


def _clip(text: str, limit: int = 30) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
