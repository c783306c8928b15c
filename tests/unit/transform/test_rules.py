"""Row rules in the transform: every column rule kind and row-rule expressions, each passing and violated,
with the reason a broken row is set aside with, on typed values, and the row accounting balanced."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

import pytest
from feed_builders import Outcome, Run, make_feed

from feedline.contract import Feed
from feedline.errors import ContractError
from feedline.transform.rules import row_checks


def feed_of(*columns: dict[str, Any], **extra: Any) -> Feed:
    return make_feed([{"name": "id", "type": "int", "nullable": False}, *columns], **extra)


def rows_by_id(outcome: Outcome) -> tuple[list[Any], dict[str, str]]:
    """The ids loaded, and the reason of each rejected row by its raw id."""
    balanced = outcome.result.rows_in == (
        outcome.result.rows_out + outcome.result.rows_rejected + outcome.result.duplicates_dropped
    )
    assert balanced, outcome.result
    return outcome.column("id"), dict(zip(outcome.rejected["id"], outcome.rejected["_reason"], strict=True))


def test_accepted_values_compare_the_cleaned_value(run: Run) -> None:
    feed = feed_of({"name": "status", "type": "string", "case": "lower", "accepted_values": ["new", "paid"]})
    ids, reasons = rows_by_id(run(feed, "id,status\n1, Paid \n2,refundd\n3,\n4,NEW\n"))
    assert ids == [1, 3, 4]  # trimmed and lowercased first; a null passes
    assert reasons == {"2": "status: accepted_values: 'refundd' is not one of new, paid"}


def test_accepted_values_of_numbers_dates_and_bools_are_typed(run: Run) -> None:
    feed = feed_of(
        {"name": "n", "type": "int", "accepted_values": [1, "2", 3.0]},
        {"name": "d", "type": "date", "accepted_values": ["2024-01-31"]},
        {"name": "b", "type": "bool", "accepted_values": [True]},
        {"name": "m", "type": "decimal(6,2)", "accepted_values": [1.5]},
    )
    text = (
        "id,n,d,b,m\n1,02,2024-01-31,yes,1.50\n2,4,2024-01-31,y,1.5\n3,1,2024-02-01,,\n4,3,,no,\n5,1,,,1.51\n"
    )
    ids, reasons = rows_by_id(run(feed, text))
    assert ids == [1]
    assert reasons == {
        "2": "n: accepted_values: '4' is not one of 1, 2, 3",
        "3": "d: accepted_values: '2024-02-01' is not one of 2024-01-31",
        "4": "b: accepted_values: 'false' is not one of true",
        "5": "m: accepted_values: '1.51' is not one of 1.5",
    }


@pytest.mark.parametrize(
    ("column", "values", "passing", "reasons"),
    [
        (
            {"type": "decimal(8,2)", "min": 0, "max": 100.5},
            ["0", "100.50", "-0.01", "100.51"],
            [1, 2],
            ["v: min: '-0.01' is below 0", "v: max: '100.51' is above 100.5"],
        ),
        (
            {"type": "int", "min": 0.5, "max": 10},
            ["1", "10", "0", "11"],
            [1, 2],
            ["v: min: '0' is below 0.5", "v: max: '11' is above 10"],
        ),
        (
            {"type": "float", "min": -1, "max": 1},
            ["-1", "1e0", "-1.5", "2"],
            [1, 2],
            ["v: min: '-1.5' is below -1", "v: max: '2.0' is above 1"],
        ),
        (
            {"type": "date", "min": "2024-01-01", "max": "2024-12-31"},
            ["2024-01-01", "2024-12-31", "2023-12-31", "2025-01-01"],
            [1, 2],
            ["v: min: '2023-12-31' is below 2024-01-01", "v: max: '2025-01-01' is above 2024-12-31"],
        ),
        (
            {"type": "timestamp", "min": "2024-01-01T08:00:00", "max": "2024-01-01T18:00:00+01:00"},
            ["2024-01-01 08:00:00", "2024-01-01T17:00:00Z", "2024-01-01 07:59:59", "2024-01-01 17:00:01"],
            [1, 2],
            [
                "v: min: '2024-01-01 07:59:59.000000' is below 2024-01-01T08:00:00",
                "v: max: '2024-01-01 17:00:01.000000' is above 2024-01-01T18:00:00+01:00",
            ],
        ),
    ],
)
def test_min_and_max_compare_typed_values_bounds_included(
    run: Run, column: dict[str, Any], values: list[str], passing: list[int], reasons: list[str]
) -> None:
    feed = feed_of({"name": "v", **column})
    text = "id,v\n" + "".join(f"{i},{v}\n" for i, v in enumerate(values, start=1)) + "9,\n"
    ids, found = rows_by_id(run(feed, text))
    assert ids == [*passing, 9]  # a null passes
    assert list(found.values()) == reasons


def test_pattern_must_match_the_whole_value(run: Run) -> None:
    feed = feed_of({"name": "sku", "type": "string", "pattern": r"[A-Z]{2}-\d+|X"})
    ids, reasons = rows_by_id(run(feed, "id,sku\n1,AB-12\n2,X\n3,xAB-12\n4,AB-12x\n5,XX\n6,\n"))
    assert ids == [1, 2, 6]
    assert reasons == {
        "3": r"sku: pattern: 'xAB-12' does not match [A-Z]{2}-\d+|X",
        "4": r"sku: pattern: 'AB-12x' does not match [A-Z]{2}-\d+|X",
        "5": r"sku: pattern: 'XX' does not match [A-Z]{2}-\d+|X",
    }


def test_max_length_counts_characters_after_trimming(run: Run) -> None:
    feed = feed_of({"name": "name", "type": "string", "max_length": 5})
    ids, reasons = rows_by_id(run(feed, "id,name\n1,ééééé\n2,  abcde  \n3,abcdef\n"))
    assert ids == [1, 2]
    assert reasons == {"3": "name: max_length: 'abcdef' has 6 characters, more than 5"}


def test_a_long_value_is_quoted_cut_short(run: Run) -> None:
    feed = feed_of({"name": "name", "type": "string", "max_length": 10})
    _, reasons = rows_by_id(run(feed, f"id,name\n1,{'x' * 150}\n"))
    assert reasons == {"1": f"name: max_length: '{'x' * 100}…' has 150 characters, more than 10"}


def test_not_null_stays_the_cleanings_rule(run: Run) -> None:
    feed = feed_of({"name": "v", "type": "int", "nullable": False, "min": 1})
    ids, reasons = rows_by_id(run(feed, "id,v\n1,1\n2,\n3,0\n"))
    assert ids == [1]
    assert reasons == {"2": "v: required value is missing", "3": "v: min: '0' is below 1"}


def test_every_broken_rule_is_named_after_the_cleanings_reasons(run: Run) -> None:
    feed = feed_of(
        {"name": "q", "type": "int"},
        {"name": "sku", "type": "string", "pattern": "[a-z]+", "max_length": 3},
    )
    _, reasons = rows_by_id(run(feed, "id,q,sku\n1,x,ABCD\n"))
    assert reasons == {
        "1": "q: 'x' is not an integer (int); sku: pattern: 'ABCD' does not match [a-z]+; "
        "sku: max_length: 'ABCD' has 4 characters, more than 3"
    }


def test_a_value_that_does_not_type_is_not_judged_by_the_rules(run: Run) -> None:
    feed = feed_of({"name": "v", "type": "int", "min": 0})
    _, reasons = rows_by_id(run(feed, "id,v\n1,-x\n"))
    assert reasons == {"1": "v: '-x' is not an integer (int)"}


ROW_RULE_FEED = (
    {"name": "ordered", "type": "date"},
    {"name": "shipped", "type": "date"},
    {"name": "qty", "type": "int"},
    {"name": "price", "type": "decimal(8,2)"},
    {"name": "status", "type": "string"},
)


@pytest.mark.parametrize(
    ("expr", "passing"),
    [
        ("shipped is None or shipped >= ordered", [1, 2, 4, 5, 6]),
        ("shipped is not None", [1, 3, 4, 5]),
        ("qty * price <= 100", [1, 2, 3, 4, 6]),  # 6: qty is null, so the expression is null: passes
        ("0 < qty < 10", [1, 2, 3, 4, 6]),
        ("status in ['new', 'paid']", [1, 2, 3, 6]),
        ("status not in ['new', 'paid']", [4, 5, 6]),
        ("not (status == 'new' and qty > 1)", [1, 3, 4, 5, 6]),
        ("ordered >= '2024-01-02' or qty + 1 > 5", [2, 3, 5, 6]),
        ("price / qty > 1.5", [1, 4, 5, 6]),
        ("-qty < -1", [2, 5, 6]),
    ],
)
def test_row_rule_expressions(run: Run, expr: str, passing: list[int]) -> None:
    feed = feed_of(*ROW_RULE_FEED, rules=[{"name": "r", "expr": expr}])
    text = (
        "id,ordered,shipped,qty,price,status\n"
        "1,2024-01-01,2024-01-02,1,10.00,paid\n"
        "2,2024-01-02,,2,1.00,new\n"
        "3,2024-01-03,2024-01-01,1,1.00,new\n"
        "4,2024-01-01,2024-01-01,1,1.60,shipped\n"
        "5,2024-01-05,2024-01-06,50,99.00,returned\n"
        "6,,,,,\n"
    )
    ids, reasons = rows_by_id(run(feed, text))
    assert ids == passing
    assert set(reasons) == {str(i) for i in range(1, 7)} - {str(i) for i in passing}
    assert all(reason.startswith(f"r: ({expr}) is false for ") for reason in reasons.values())


def test_a_row_rules_reason_names_the_values_it_read(run: Run) -> None:
    feed = feed_of(*ROW_RULE_FEED, rules=[{"name": "shipped_after_ordered", "expr": "shipped >= ordered"}])
    _, reasons = rows_by_id(run(feed, "id,ordered,shipped,qty,price,status\n1,2024-01-03,2024-01-01,,,\n"))
    assert reasons == {
        "1": "shipped_after_ordered: (shipped >= ordered) is false for shipped='2024-01-01', "
        "ordered='2024-01-03'"
    }
    feed = feed_of(*ROW_RULE_FEED, rules=[{"name": "needs_ship", "expr": "shipped is not None or qty > 0"}])
    _, reasons = rows_by_id(run(feed, "id,ordered,shipped,qty,price,status\n1,,,0,,\n"))
    assert reasons == {"1": "needs_ship: (shipped is not None or qty > 0) is false for shipped=null, qty='0'"}


def test_dedupe_keeps_the_first_row_that_passes_the_rules(run: Run) -> None:
    feed = feed_of({"name": "v", "type": "int", "max": 5}, primary_key=["id"])
    outcome = run(feed, "id,v\n1,9\n1,2\n1,3\n2,1\n")
    ids, reasons = rows_by_id(outcome)
    assert ids == [1, 2]
    assert outcome.column("v") == [2, 1]
    assert reasons == {"1": "v: max: '9' is above 5"}
    result = outcome.result
    assert (result.rows_in, result.rows_out, result.rows_rejected, result.duplicates_dropped) == (4, 2, 1, 1)


def test_typed_values_reach_the_clean_file_unchanged(run: Run) -> None:
    feed = feed_of(
        {"name": "m", "type": "decimal(6,2)", "min": 0},
        {"name": "d", "type": "date", "max": "2030-01-01"},
        rules=[{"name": "r", "expr": "m > 0 or d is None"}],
    )
    outcome = run(feed, "id,m,d\n1,1.5,2024-01-31\n2,0,\n")
    assert outcome.column("m") == [Decimal("1.50"), Decimal("0.00")]
    assert outcome.column("d") == [date(2024, 1, 31), None]


def test_a_feed_without_rules_compiles_no_check() -> None:
    assert row_checks(feed_of({"name": "v", "type": "string"})) == []
    assert len(row_checks(feed_of({"name": "v", "type": "int", "min": 0, "max": 1}))) == 2


@pytest.mark.parametrize(
    ("column", "rules", "message"),
    [
        (
            {"name": "v", "type": "string", "case": "lower", "accepted_values": ["new", "Paid"]},
            [],
            "feed test: columns.v.accepted_values: 'Paid' can never match, the column being lowercased "
            "(case: lower); write 'paid'",
        ),
        (
            {"name": "v", "type": "string", "accepted_values": [" new"]},
            [],
            "columns.v.accepted_values: ' new' has surrounding spaces",
        ),
        (
            {"name": "v", "type": "int", "accepted_values": [1.5]},
            [],
            "columns.v.accepted_values: 1.5 is not an integer, and the column is int; remove it",
        ),
        (
            {"name": "v", "type": "string", "accepted_values": [1]},
            [],
            "columns.v.accepted_values: 1 is not text, and the column is a string; quote it: '1'",
        ),
        (
            {"name": "v", "type": "int", "accepted_values": ["one"]},
            [],
            "columns.v.accepted_values: 'one' is not a number, and the column is int",
        ),
        (
            {"name": "v", "type": "string", "pattern": r"(a)\1"},
            [],
            r"columns.v.pattern: '(a)\\1' is not a regular expression polars can run",
        ),
        (
            {"name": "v", "type": "string"},
            [{"name": "r", "expr": "v > 5"}],
            "feed test: rules.r: 'v > 5': 5 is not text, and the column is a string; quote it: '5'",
        ),
        (
            {"name": "v", "type": "string"},
            [{"name": "r", "expr": "v + 1 > 2"}],
            "feed test: rules.r: cannot be evaluated on the columns' types (arithmetic on dtypes str",
        ),
        ({"name": "v", "type": "int"}, [{"name": "r", "expr": "v + 1"}], "rules.r: is not a true/false"),
        (
            {"name": "v", "type": "date"},
            [{"name": "r", "expr": "v > 'yesterday'"}],
            "'yesterday' is not an ISO 8601 date; write e.g. '2024-01-31'",
        ),
        ({"name": "v", "type": "int"}, [{"name": "r", "expr": "v in [1, v]"}], "may hold only constants"),
        ({"name": "v", "type": "int"}, [{"name": "r", "expr": "[1] == v"}], "a list is allowed only after"),
    ],
)
def test_a_rule_that_cannot_run_is_a_contract_error_naming_it(
    column: dict[str, Any], rules: list[dict[str, str]], message: str
) -> None:
    with pytest.raises(ContractError) as info:
        row_checks(feed_of(column, rules=rules))
    assert message in str(info.value)


def test_a_broken_rule_quarantines_nothing_and_writes_no_output(run: Run, tmp_path: Any) -> None:
    feed = feed_of({"name": "v", "type": "string"}, rules=[{"name": "r", "expr": "v + 1 > 5"}])
    with pytest.raises(ContractError, match=r"rules\.r"):
        run(feed, "id,v\n1,a\n")
    assert not list(tmp_path.rglob("*.parquet"))
