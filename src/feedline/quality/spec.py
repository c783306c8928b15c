"""What a feed may declare about data quality: row rules, batch checks and its schema policy.

Row rules are enforced in the transform (a violating row is set aside, its reason the rule's name);
batch checks run in the warehouse on the staged batch before it is published (an `error` check that
fails blocks the batch and quarantines the file; a `warn` check records and notifies). The models only
validate what is written; `feedline.contract.Feed` checks that the columns they name exist.
"""

from __future__ import annotations

import ast
import difflib
import re
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SchemaPolicy(StrEnum):
    """What happens to a column the file has and the contract does not."""

    evolve = "evolve"  # added to the target table as a nullable text column; safe type widening applied
    freeze = "freeze"  # the file is quarantined naming the unexpected columns
    discard = "discard"  # the columns are dropped and counted


class Severity(StrEnum):
    error = "error"  # the batch is blocked: target untouched, file quarantined with the failed checks
    warn = "warn"  # recorded and notified; the batch is published


class CheckKind(StrEnum):
    unique = "unique"
    row_count = "row_count"
    row_count_change = "row_count_change"
    null_rate = "null_rate"
    sum = "sum"
    avg = "avg"
    freshness = "freshness"
    references = "references"


#: Fields each check kind requires, and the ones it may also take (beyond check, name, severity).
CHECK_FIELDS: dict[CheckKind, tuple[frozenset[str], frozenset[str]]] = {
    CheckKind.unique: (frozenset({"columns"}), frozenset()),
    CheckKind.row_count: (frozenset(), frozenset({"min", "max"})),
    CheckKind.row_count_change: (frozenset({"max_change"}), frozenset({"over_last"})),
    CheckKind.null_rate: (frozenset({"column", "max"}), frozenset()),
    CheckKind.sum: (frozenset({"column"}), frozenset({"min", "max"})),
    CheckKind.avg: (frozenset({"column"}), frozenset({"min", "max"})),
    CheckKind.freshness: (frozenset({"column", "max_age_hours"}), frozenset()),
    CheckKind.references: (frozenset({"column", "table", "key"}), frozenset({"schema_"})),
}
NUMBER_TYPES = frozenset({"int", "bigint", "float", "decimal"})
TIME_TYPES = frozenset({"date", "timestamp"})
#: Column types a check kind can read; kinds not listed read any column.
COLUMN_TYPES: dict[CheckKind, frozenset[str]] = {
    CheckKind.sum: NUMBER_TYPES,
    CheckKind.avg: NUMBER_TYPES,
    CheckKind.freshness: TIME_TYPES,
}
_OPTIONAL_FIELDS = frozenset(
    {"columns", "column", "min", "max", "max_change", "over_last", "max_age_hours", "table", "key", "schema_"}
)


class Check(_Strict):
    """One batch-level check, run on the batch in the warehouse inside its load's transaction, so a
    failing `error` check rolls the load back before anyone can see it.

    Examples::

        - {check: unique, columns: [order_id]}
        - {check: row_count, min: 1, max: 1000000}
        - {check: row_count_change, max_change: 0.5, over_last: 5, severity: warn}
        - {check: null_rate, column: customer_email, max: 0.05}
        - {check: sum, column: amount, min: 0}
        - {check: avg, column: quantity, min: 1, max: 20}
        - {check: freshness, column: ordered_at, max_age_hours: 48}
        - {check: references, column: country, table: countries, key: code}
    """

    check: CheckKind = Field(description="The check: " + ", ".join(k.value for k in CheckKind) + ".")
    name: str | None = Field(None, description="Name shown in results; defaults to '<check>_<column>'.")
    severity: Severity = Field(
        Severity.error, description="error blocks the batch; warn records and publishes."
    )
    columns: tuple[str, ...] = Field((), description="unique: the columns that must be unique together.")
    column: str | None = Field(
        None, description="The column a null_rate/sum/avg/freshness/references check reads."
    )
    min: float | None = Field(None, description="row_count/sum/avg: the lowest accepted value.")
    max: float | None = Field(
        None,
        description="row_count/sum/avg: the highest accepted value; null_rate: the highest fraction, 0 to 1.",
    )
    max_change: float | None = Field(
        None, gt=0, description="row_count_change: the largest accepted relative change, e.g. 0.5 for ±50 %."
    )
    over_last: int = Field(
        5, ge=1, le=100, description="row_count_change: compare with the mean of this many loads."
    )
    max_age_hours: float | None = Field(
        None, gt=0, description="freshness: the newest value of `column` must be at most this old."
    )
    table: str | None = Field(None, description="references: the table the values must exist in.")
    key: str | None = Field(None, description="references: the column of `table` holding the values.")
    schema_: str | None = Field(None, alias="schema", description="references: the schema of `table`.")

    @field_validator("check", mode="before")
    @classmethod
    def _known_kind(cls, value: object) -> object:
        kinds = [k.value for k in CheckKind]
        if isinstance(value, str) and value not in kinds:
            known = ", ".join(kinds)
            close = difflib.get_close_matches(value, kinds, n=1, cutoff=0.6)
            if close:
                raise ValueError(f"{value!r} is not a check; did you mean '{close[0]}'? (checks: {known})")
            raise ValueError(f"{value!r} is not a check; use one of: {known}")
        return value

    @field_validator("name", "column", "table", "key", "schema_")
    @classmethod
    def _identifier(cls, value: str | None) -> str | None:
        if value is not None and not IDENTIFIER.match(value):
            raise ValueError(f"{value!r} is not a valid identifier (letters, digits and '_')")
        return value

    @field_validator("columns")
    @classmethod
    def _identifiers(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for name in value:
            cls._identifier(name)
        return value

    @model_validator(mode="after")
    def _fields_fit_the_kind(self) -> Check:
        required, optional = CHECK_FIELDS[self.check]
        given = {f for f in _OPTIONAL_FIELDS if f in self.model_fields_set}
        missing = sorted(required - given)
        if missing:
            raise ValueError(f"check {self.check.value} needs {', '.join(missing)}")
        extra = sorted(given - required - optional)
        if extra:
            names = ", ".join("schema" if f == "schema_" else f for f in extra)
            raise ValueError(f"check {self.check.value} does not take {names}; remove it")
        if self.check is CheckKind.null_rate and self.max is not None and not 0 <= self.max <= 1:
            raise ValueError("null_rate max is a fraction between 0 and 1, e.g. 0.05 for 5 %")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min ({self.min}) is above max ({self.max})")
        bounded = (CheckKind.row_count, CheckKind.sum, CheckKind.avg)
        if self.check in bounded and self.min is None and self.max is None:
            raise ValueError(f"check {self.check.value} needs min and/or max")
        return self

    @property
    def label(self) -> str:
        """The name results are recorded under."""
        if self.name:
            return self.name
        target = "_".join(self.columns) if self.columns else self.column
        return f"{self.check.value}_{target}" if target else self.check.value

    @property
    def named_columns(self) -> tuple[str, ...]:
        """The feed columns this check reads."""
        return self.columns or ((self.column,) if self.column else ())


class RowRule(_Strict):
    """A rule over several columns of one row, written as a small expression (no SQL).

    The expression uses column names, numbers, 'strings', comparisons (== != < <= > >=), `and`, `or`,
    `not`, + - * /, `x is None` / `x is not None`, and `x in [..]`. A row for which it is false is set
    aside with the rule's name as its reason; a row where a column it reads is null passes unless the
    rule says otherwise (as SQL CHECK constraints do). Example::

        - {name: shipped_after_ordered, expr: "shipped_at is None or shipped_at >= ordered_at"}
    """

    name: str = Field(description="The reason given to a row that breaks the rule.")
    expr: str = Field(description="A boolean expression over the row's columns (see above).")

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not IDENTIFIER.match(value):
            raise ValueError(f"{value!r} is not a valid rule name (letters, digits and '_')")
        return value

    @field_validator("expr")
    @classmethod
    def _expr(cls, value: str) -> str:
        parse_expr(value)
        return value

    @property
    def columns(self) -> tuple[str, ...]:
        """The column names the expression reads, in order of appearance."""
        tree = parse_expr(self.expr)
        return tuple(dict.fromkeys(n.id for n in ast.walk(tree) if isinstance(n, ast.Name)))


_ALLOWED_NODES = (
    ast.Expression, ast.BoolOp, ast.And, ast.Or, ast.UnaryOp, ast.Not, ast.USub, ast.UAdd, ast.BinOp,
    ast.Add, ast.Sub, ast.Mult, ast.Div, ast.Compare, ast.Eq, ast.NotEq, ast.Lt, ast.LtE, ast.Gt, ast.GtE,
    ast.Is, ast.IsNot, ast.In, ast.NotIn, ast.Name, ast.Load, ast.Constant, ast.List, ast.Tuple,
)  # fmt: skip


def parse_expr(text: str) -> ast.Expression:
    """Parse a row-rule expression, accepting only the small language `RowRule` documents."""
    try:
        tree = ast.parse(text, mode="eval")
    except SyntaxError as exc:
        raise ValueError(f"cannot parse {text!r}: {exc.msg} at column {exc.offset}") from None
    for node in ast.walk(tree):
        if not isinstance(node, _ALLOWED_NODES):
            raise ValueError(f"{text!r}: {type(node).__name__} is not allowed in a rule expression")
        if isinstance(node, ast.Constant) and not isinstance(node.value, int | float | str | bool | None):
            raise ValueError(f"{text!r}: constant {node.value!r} is not a number, string, bool or None")
        if isinstance(node, ast.Compare) and any(
            isinstance(op, ast.Is | ast.IsNot) and not (isinstance(c, ast.Constant) and c.value is None)
            for op, c in zip(node.ops, node.comparators, strict=True)
        ):
            raise ValueError(f"{text!r}: 'is' / 'is not' compare with None only")
    return tree


def check_pattern(value: str | None) -> str | None:
    """A regular expression that compiles (Rust regex syntax, as polars uses; no look-around)."""
    if value is None:
        return None
    try:
        re.compile(value)
    except re.error as exc:
        raise ValueError(f"pattern {value!r} is not a valid regular expression: {exc}") from None
    if "(?=" in value or "(?!" in value or "(?<" in value:
        raise ValueError(f"pattern {value!r}: look-around is not supported; rewrite it without")
    return value
