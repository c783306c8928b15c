"""Row rules as polars expressions: the contract's column rules and row-rule expressions, on typed values.

Each rule becomes a `RowCheck`: a vectorised boolean saying which rows break it, and the reason a broken
row is set aside with (the column, the rule and the value). Rules read the values after cleaning and
typing, and follow SQL CHECK semantics: a null passes every rule (`nullable: false` is the cleaning's
business), and a row-rule expression that is null for a row passes. A feed without rules compiles to no
check at all, so its transform costs nothing more.
"""

from __future__ import annotations

import ast
import functools
import operator
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

import polars as pl

from feedline.contract import Case, Column, ColumnType, Feed
from feedline.errors import ContractError
from feedline.quality.spec import RowRule, parse_expr
from feedline.transform.clean import QUOTED_CHARS, polars_type

SHOWN_VALUES = 20
"""An accepted_values reason lists at most this many of the accepted values."""
_COMPARE: dict[type[ast.cmpop], Callable[[pl.Expr, pl.Expr], pl.Expr]] = {
    ast.Eq: lambda a, b: a == b,
    ast.NotEq: lambda a, b: a != b,
    ast.Lt: lambda a, b: a < b,
    ast.LtE: lambda a, b: a <= b,
    ast.Gt: lambda a, b: a > b,
    ast.GtE: lambda a, b: a >= b,
}
_ARITHMETIC: dict[type[ast.operator], Callable[[pl.Expr, pl.Expr], pl.Expr]] = {
    ast.Add: lambda a, b: a + b,
    ast.Sub: lambda a, b: a - b,
    ast.Mult: lambda a, b: a * b,
    ast.Div: lambda a, b: a / b,
}


@dataclass(frozen=True)
class RowCheck:
    """One rule over a typed row: `broken` is true (never null) where the row breaks it; `reason` says
    why on those rows and is meant for the few rejected rows only."""

    name: str
    broken: pl.Expr
    reason: pl.Expr


def row_checks(feed: Feed, columns: Sequence[Column] | None = None) -> list[RowCheck]:
    """Every rule of `feed` over `columns` (by default the contract's) as checks, validated against the
    columns' types so that a rule polars cannot evaluate is a `ContractError` before any row is read."""
    columns = tuple(feed.columns if columns is None else columns)
    checks = [check for column in columns for check in column_checks(feed, column)]
    types = {column.name: column.type for column in columns}
    checks.extend(rule_check(feed, rule, types) for rule in feed.rules)
    if checks:
        _validate(feed, checks, types)
    return checks


# --- column rules ----------------------------------------------------------------------------------


def column_checks(feed: Feed, column: Column) -> list[RowCheck]:
    """The column's accepted_values, min, max, pattern and max_length rules, in that order."""
    value = typed(column)
    checks: list[RowCheck] = []
    if column.accepted_values is not None:
        checks.append(_accepted(feed, column, value))
    for rule in ("min", "max"):
        bound = getattr(column, rule)
        if bound is not None:
            checks.append(_bound(feed, column, value, rule, bound))
    if column.pattern is not None:
        checks.append(_pattern(feed, column, value, column.pattern))
    if column.max_length is not None:
        length = value.str.len_chars()
        broken = value.is_not_null() & (length > column.max_length)
        what = pl.concat_str(
            [pl.lit(" has "), length.cast(pl.String), pl.lit(f" characters, more than {column.max_length}")]
        )
        checks.append(_check(column, "max_length", broken, value, what))
    return checks


def _accepted(feed: Feed, column: Column, value: pl.Expr) -> RowCheck:
    accepted = column.accepted_values or ()
    values = [_constant(feed, column, "accepted_values", v) for v in accepted]
    for raw, coerced in zip(accepted, values, strict=True):
        problem = _never_matches(column, raw, coerced)
        if problem:
            raise ContractError(f"feed {feed.name}: columns.{column.name}.accepted_values: {problem}")
    shown = ", ".join(show(v) for v in accepted[:SHOWN_VALUES])
    if len(accepted) > SHOWN_VALUES:
        shown += f", … ({len(accepted)} values)"
    broken = value.is_not_null() & ~value.is_in(values)
    return _check(column, "accepted_values", broken, value, f" is not one of {shown}")


def _never_matches(column: Column, raw: Any, coerced: Any) -> str | None:
    """Why an accepted value can never equal a cleaned value, or None: a contract mistake worth naming."""
    kind = column.type.name
    if kind in ("int", "bigint") and not isinstance(coerced, int):
        return f"{raw!r} is not an integer, and the column is {column.type}; remove it"
    if kind != "string":
        return None
    if column.trim and coerced != coerced.strip():
        return f"{raw!r} has surrounding spaces, which trimming removes from every value; remove them"
    cased = {Case.lower: coerced.lower(), Case.upper: coerced.upper()}.get(column.case, coerced)
    if cased != coerced:
        case = column.case.value
        return f"{raw!r} can never match, the column being {case}cased (case: {case}); write {cased!r}"
    return None


def _bound(feed: Feed, column: Column, value: pl.Expr, rule: str, bound: float | str) -> RowCheck:
    limit = pl.lit(_constant(feed, column, rule, bound))
    broken = value.is_not_null() & ((value < limit) if rule == "min" else (value > limit))
    side = "below" if rule == "min" else "above"
    return _check(column, rule, broken, value, f" is {side} {show(bound)}")


def _pattern(feed: Feed, column: Column, value: pl.Expr, pattern: str) -> RowCheck:
    whole = f"^(?:{pattern})$"
    try:
        pl.Series([""]).str.contains(whole)
    except pl.exceptions.PolarsError as exc:
        raise ContractError(
            f"feed {feed.name}: columns.{column.name}.pattern: {pattern!r} is not a regular expression "
            f"polars can run ({str(exc).strip().splitlines()[0]}); rewrite it without look-around or "
            "back-references"
        ) from None
    broken = value.is_not_null() & ~value.str.contains(whole)
    return _check(column, "pattern", broken, value, f" does not match {pattern}")


def _check(column: Column, rule: str, broken: pl.Expr, value: pl.Expr, what: pl.Expr | str) -> RowCheck:
    """A column rule's check; its reason reads `<column>: <rule>: '<value>'<what>`."""
    tail = pl.lit(what) if isinstance(what, str) else what
    reason = pl.when(broken).then(pl.concat_str([pl.lit(f"{column.name}: {rule}: "), quoted(value), tail]))
    return RowCheck(f"columns.{column.name}.{rule}", broken, reason)


def _constant(feed: Feed, column: Column, rule: str, value: Any) -> Any:
    try:
        return coerce(value, column.type)
    except ValueError as exc:
        raise ContractError(f"feed {feed.name}: columns.{column.name}.{rule}: {exc}") from None


# --- row rules -------------------------------------------------------------------------------------


def rule_check(feed: Feed, rule: RowRule, types: Mapping[str, ColumnType]) -> RowCheck:
    """A row rule: broken where its expression is false (null passes); the reason shows what it read."""
    try:
        holds = _Compiler(types).expr(parse_expr(rule.expr).body)
    except (ValueError, pl.exceptions.PolarsError) as exc:
        raise ContractError(f"feed {feed.name}: rules.{rule.name}: {rule.expr!r}: {exc}") from None
    broken = (~holds).fill_null(False)
    read = [
        pl.concat_str([pl.lit(f"{name}="), quoted(_column(name, types[name])).fill_null("null")])
        for name in rule.columns
    ]
    what = pl.concat_str(read, separator=", ")
    reason = pl.when(broken).then(pl.concat_str([pl.lit(f"{rule.name}: ({rule.expr}) is false for "), what]))
    return RowCheck(f"rules.{rule.name}", broken, reason)


class _Compiler:
    """The rule language (see `RowRule`) to polars; a constant compared with a column takes its type."""

    def __init__(self, types: Mapping[str, ColumnType]) -> None:
        self.types = types

    def expr(self, node: ast.expr) -> pl.Expr:
        if isinstance(node, ast.BoolOp):
            combine = operator.and_ if isinstance(node.op, ast.And) else operator.or_
            return functools.reduce(combine, [self.expr(value) for value in node.values])
        if isinstance(node, ast.UnaryOp):
            operand = self.expr(node.operand)
            if isinstance(node.op, ast.Not):
                return ~operand
            return -operand if isinstance(node.op, ast.USub) else operand
        if isinstance(node, ast.BinOp):
            return _ARITHMETIC[type(node.op)](self.expr(node.left), self.expr(node.right))
        if isinstance(node, ast.Compare):
            return self._compare(node)
        if isinstance(node, ast.Name):
            return _column(node.id, self.types[node.id])
        if isinstance(node, ast.Constant):
            return pl.lit(node.value)
        raise ValueError("a list is allowed only after 'in' / 'not in'")

    def _compare(self, node: ast.Compare) -> pl.Expr:
        """`a < b <= c` is `a < b and b <= c`, as in Python."""
        terms: list[pl.Expr] = []
        left = node.left
        for op, right in zip(node.ops, node.comparators, strict=True):
            terms.append(self._pair(left, op, right))
            left = right
        return functools.reduce(operator.and_, terms)

    def _pair(self, left: ast.expr, op: ast.cmpop, right: ast.expr) -> pl.Expr:
        if isinstance(op, ast.Is | ast.IsNot):  # parse_expr allows only `x is None` / `x is not None`
            subject = self.expr(left)
            return subject.is_null() if isinstance(op, ast.Is) else subject.is_not_null()
        if isinstance(op, ast.In | ast.NotIn):
            if not isinstance(right, ast.List | ast.Tuple):
                raise ValueError("'in' takes a list of constants, e.g. status in ['new', 'paid']")
            ctype = self._type_of(left)
            values = [self._constant(item, ctype) for item in right.elts]
            found = self.expr(left).is_in(values)
            return found if isinstance(op, ast.In) else ~found
        a = self._operand(left, self._type_of(right))
        b = self._operand(right, self._type_of(left))
        return _COMPARE[type(op)](a, b)

    def _type_of(self, node: ast.expr) -> ColumnType | None:
        return self.types[node.id] if isinstance(node, ast.Name) else None

    def _operand(self, node: ast.expr, peer: ColumnType | None) -> pl.Expr:
        """A constant compared with a column becomes a value of the column's type ('2024-01-31' a date)."""
        if peer is not None and _constant_value(node) is not _NOT_CONSTANT:
            return pl.lit(self._constant(node, peer))
        return self.expr(node)

    def _constant(self, node: ast.expr, ctype: ColumnType | None) -> Any:
        value = _constant_value(node)
        if value is _NOT_CONSTANT:
            raise ValueError("the list after 'in' may hold only constants")
        return value if ctype is None else coerce(value, ctype)


_NOT_CONSTANT = object()


def _constant_value(node: ast.expr) -> Any:
    """The value of a constant, or of a negated number; `_NOT_CONSTANT` for anything else."""
    if isinstance(node, ast.Constant):
        return node.value
    if (
        isinstance(node, ast.UnaryOp)
        and isinstance(node.op, ast.USub | ast.UAdd)
        and isinstance(node.operand, ast.Constant)
        and isinstance(node.operand.value, int | float)
        and not isinstance(node.operand.value, bool)
    ):
        return -node.operand.value if isinstance(node.op, ast.USub) else node.operand.value
    return _NOT_CONSTANT


# --- values ----------------------------------------------------------------------------------------


def coerce(value: Any, ctype: ColumnType) -> Any:
    """A constant of the contract as a value of the column's type, so that comparisons are exact: a
    decimal bound stays a Decimal, a date is a date. Raises ValueError saying what to write instead."""
    if value is None:
        return None
    kind = ctype.name
    if kind == "string":
        if isinstance(value, str):
            return value
        raise ValueError(f"{value!r} is not text, and the column is a string; quote it: '{value}'")
    if kind == "bool":
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in ("true", "false"):
            return value.strip().lower() == "true"
        raise ValueError(f"{value!r} is not a bool; write true or false")
    if kind in ("date", "timestamp"):
        return _time(value, kind)
    return _number(value, ctype)


def _time(value: Any, kind: str) -> date | datetime:
    if not isinstance(value, str):
        raise ValueError(f"{value!r} is not a {kind}; write it as ISO 8601 text, e.g. '2024-01-31'")
    try:
        stamp = datetime.fromisoformat(value.strip())
    except ValueError:
        raise ValueError(f"{value!r} is not an ISO 8601 {kind}; write e.g. '2024-01-31'") from None
    if stamp.tzinfo is not None:  # the transform stores zoned times as UTC without a zone
        stamp = stamp.astimezone(UTC).replace(tzinfo=None)
    if kind == "date" and stamp == datetime(stamp.year, stamp.month, stamp.day):
        return stamp.date()
    return stamp


def _number(value: Any, ctype: ColumnType) -> int | float | Decimal:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError(f"{value!r} is not a number, and the column is {ctype}")
    try:
        number = Decimal(value.strip()) if isinstance(value, str) else Decimal(str(value))
    except InvalidOperation:
        raise ValueError(f"{value!r} is not a number, and the column is {ctype}") from None
    if not number.is_finite():
        raise ValueError(f"{value!r} is not a finite number")
    if ctype.name == "decimal":
        return number
    if ctype.name == "float":
        return float(number)
    return int(number) if number == number.to_integral_value() else float(number)


def typed(column: Column) -> pl.Expr:
    """The column's typed value as the clean Parquet stores it."""
    return _column(column.name, column.type)


def _column(name: str, ctype: ColumnType) -> pl.Expr:
    return pl.col(name).cast(polars_type(ctype))


def quoted(value: pl.Expr) -> pl.Expr:
    """The value as text in quotes, cut at QUOTED_CHARS; null stays null."""
    text = value.cast(pl.String)
    cut = pl.concat_str([text.str.slice(0, QUOTED_CHARS), pl.lit("…")])
    shown = pl.when(text.str.len_chars() > QUOTED_CHARS).then(cut).otherwise(text)
    return pl.concat_str([pl.lit("'"), shown, pl.lit("'")])


def show(value: Any) -> str:
    """A contract constant as a person wrote it in YAML: 0 rather than 0.0, true rather than True."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _validate(feed: Feed, checks: list[RowCheck], types: Mapping[str, ColumnType]) -> None:
    """Evaluate every check on an empty frame of the columns' types: a type error (a string compared
    with a number, arithmetic on text, a rule that is not true/false) surfaces here, naming the rule."""
    empty = pl.LazyFrame(schema={name: polars_type(ctype) for name, ctype in types.items()})
    for check in checks:
        try:
            kind = empty.select(check.broken.alias("broken")).collect_schema()["broken"]
            if kind == pl.Boolean:
                empty.select(check.broken.alias("broken"), check.reason.alias("reason")).collect()
        except pl.exceptions.PolarsError as exc:
            detail = str(exc).strip().splitlines()[0]
            raise ContractError(
                f"feed {feed.name}: {check.name}: cannot be evaluated on the columns' types ({detail}); "
                "compare values of the same kind (numbers with numbers, dates with ISO dates, text with "
                "quoted text)"
            ) from None
        if kind != pl.Boolean:
            raise ContractError(
                f"feed {feed.name}: {check.name}: is not a true/false expression (it gives {kind}); "
                "compare it with something, e.g. 'quantity > 0'"
            )
