"""Validation of the batch checks a feed declares: fields per kind, bounds, names, columns."""

from __future__ import annotations

from typing import Any

import pytest

from feedline.contract import Feed, parse_feed
from feedline.errors import ContractError
from feedline.quality.spec import CHECK_FIELDS, Check, CheckKind, Severity

# One value for every optional field, valid for any kind that takes it.
VALUES: dict[str, Any] = {
    "columns": ["order_id"], "column": "amount", "min": 0, "max": 1, "max_change": 0.5, "over_last": 3,
    "max_age_hours": 24, "table": "countries", "key": "code", "schema": "ref",
}  # fmt: skip
FIELDS = set(VALUES)


def feed_with(*checks: dict[str, Any], rules: tuple[dict[str, Any], ...] = ()) -> dict[str, Any]:
    return {
        "name": "orders",
        "source": {"uri": "data/landing/orders"},
        "columns": [
            {"name": "order_id", "type": "bigint", "nullable": False},
            {"name": "amount", "type": "decimal(12,2)"},
            {"name": "customer_email", "type": "string"},
            {"name": "ordered_at", "type": "timestamp"},
        ],
        "target": {"table": "orders"},
        "checks": list(checks),
        "rules": list(rules),
    }


def parse(*checks: dict[str, Any], **extra: Any) -> Feed:
    return parse_feed(feed_with(*checks, **extra), "feeds/orders.yaml")


def error_of(*checks: dict[str, Any], **extra: Any) -> str:
    with pytest.raises(ContractError) as info:
        parse(*checks, **extra)
    return str(info.value)


def minimal(kind: CheckKind) -> dict[str, Any]:
    """The smallest valid check of a kind: its required fields (and a bound where one is needed)."""
    required, _ = CHECK_FIELDS[kind]
    check = {"check": kind.value, **{f: VALUES[f] for f in required}}
    if kind in (CheckKind.row_count, CheckKind.sum, CheckKind.avg):
        check["min"] = 0
    if kind is CheckKind.freshness:
        check["column"] = "ordered_at"
    return check


def _alias(name: str) -> str:
    return "schema" if name == "schema_" else name


@pytest.mark.parametrize("kind", list(CheckKind))
def test_the_smallest_check_of_every_kind_validates(kind: CheckKind) -> None:
    (check,) = parse(minimal(kind)).checks
    assert check.check is kind
    assert check.severity is Severity.error


@pytest.mark.parametrize(
    ("kind", "field"),
    [(kind, f) for kind, (required, _) in CHECK_FIELDS.items() for f in sorted(required)],
)
def test_every_required_field_is_required(kind: CheckKind, field: str) -> None:
    check = minimal(kind)
    del check[field]
    assert f"feeds/orders.yaml: checks[0]: check {kind.value} needs {field}" in error_of(check)


@pytest.mark.parametrize(
    ("kind", "field"),
    [
        (kind, f)
        for kind, (required, optional) in CHECK_FIELDS.items()
        for f in sorted(FIELDS - {_alias(x) for x in required | optional})
    ],
)
def test_every_field_a_kind_does_not_take_is_refused(kind: CheckKind, field: str) -> None:
    check = {**minimal(kind), field: VALUES[field]}
    message = error_of(check)
    assert f"checks[0]: check {kind.value} does not take {field}; remove it" in message


@pytest.mark.parametrize(
    ("kind", "field"),
    [(kind, _alias(f)) for kind, (_, optional) in CHECK_FIELDS.items() for f in sorted(optional)],
)
def test_every_optional_field_is_accepted(kind: CheckKind, field: str) -> None:
    (check,) = parse({**minimal(kind), field: VALUES[field]}).checks
    value = VALUES[field]
    assert getattr(check, "schema_" if field == "schema" else field) == (
        tuple(value) if isinstance(value, list) else value
    )


@pytest.mark.parametrize(
    ("check", "fragment"),
    [
        ({"check": "uniq", "columns": ["order_id"]},
         "checks[0].check: 'uniq' is not a check; did you mean 'unique'? (checks: unique, row_count,"),
        ({"check": "median", "column": "amount"},
         "checks[0].check: 'median' is not a check; use one of: unique,"),
        ({"check": "row_count"}, "checks[0]: check row_count needs min and/or max"),
        ({"check": "sum", "column": "amount"}, "checks[0]: check sum needs min and/or max"),
        ({"check": "avg", "column": "amount"}, "checks[0]: check avg needs min and/or max"),
        ({"check": "row_count", "min": 10, "max": 1}, "checks[0]: min (10.0) is above max (1.0)"),
        ({"check": "null_rate", "column": "amount", "max": 5},
         "checks[0]: null_rate max is a fraction between 0 and 1, e.g. 0.05 for 5 %"),
        ({"check": "row_count_change", "max_change": 0},
         "checks[0].max_change: Input should be greater than 0"),
        ({"check": "row_count_change", "max_change": 1, "over_last": 0},
         "checks[0].over_last: Input should be greater than or equal to 1"),
        ({"check": "freshness", "column": "ordered_at", "max_age_hours": -1},
         "checks[0].max_age_hours: Input should be greater than 0"),
        ({"check": "unique", "columns": ["order id"]}, "'order id' is not a valid identifier"),
        ({"check": "references", "column": "amount", "table": "x; drop", "key": "k"},
         "checks[0].table: 'x; drop' is not a valid identifier"),
        ({"check": "unique", "columns": ["order_id"], "severity": "fatal"},
         "checks[0].severity: Input should be 'error' or 'warn'"),
        ({"check": "unique", "columns": ["order_id"], "colums": ["x"]},
         "checks[0].colums: unknown field; did you mean 'columns'?"),
    ],
)  # fmt: skip
def test_invalid_checks_are_named_with_the_fix(check: dict[str, Any], fragment: str) -> None:
    assert fragment in error_of(check)


@pytest.mark.parametrize(
    ("check", "fragment"),
    [
        ({"check": "null_rate", "column": "customer_emial", "max": 0.1},
         "checks.null_rate_customer_emial: 'customer_emial' is not a column; did you mean 'customer_email'?"),
        ({"check": "unique", "columns": ["order_id", "ordered"]},
         "checks.unique_order_id_ordered: 'ordered' is not a column; did you mean 'ordered_at'?"),
        ({"check": "references", "column": "zip", "table": "zips", "key": "code"},
         "checks.references_zip: 'zip' is not a column"),
    ],
)  # fmt: skip
def test_unknown_columns_are_named_with_a_suggestion(check: dict[str, Any], fragment: str) -> None:
    message = error_of(check)
    assert fragment in message
    if "did you mean" not in fragment:
        assert "did you mean" not in message


def test_names_may_not_clash_between_checks_or_with_rules() -> None:
    twice = error_of(
        {"check": "sum", "column": "amount", "min": 0}, {"check": "sum", "column": "amount", "max": 9}
    )
    assert "checks/rules: the name(s) sum_amount are used twice; name them apart" in twice
    named = parse(
        {"check": "sum", "column": "amount", "min": 0},
        {"check": "sum", "column": "amount", "max": 9, "name": "sum_amount_cap"},
    )
    assert [c.label for c in named.checks] == ["sum_amount", "sum_amount_cap"]
    rule = {"name": "row_count", "expr": "amount >= 0"}
    clash = error_of({"check": "row_count", "min": 1}, rules=(rule,))
    assert "the name(s) row_count are used twice" in clash


def test_labels_and_the_columns_a_check_reads() -> None:
    checks = parse(
        {"check": "unique", "columns": ["order_id", "customer_email"]},
        {"check": "row_count", "max": 10},
        {
            "check": "freshness",
            "column": "ordered_at",
            "max_age_hours": 1,
            "severity": "warn",
            "name": "recent",
        },
    ).checks
    assert [c.label for c in checks] == ["unique_order_id_customer_email", "row_count", "recent"]
    assert [c.named_columns for c in checks] == [("order_id", "customer_email"), (), ("ordered_at",)]
    assert checks[2].severity is Severity.warn
    refs = Check.model_validate(
        {"check": "references", "column": "c", "table": "t", "key": "k", "schema": "s"}
    )
    assert (refs.schema_, refs.table, refs.key) == ("s", "t", "k")
