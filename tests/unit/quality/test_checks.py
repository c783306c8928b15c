"""Every batch check kind, passing and failing, on DuckDB, PostgreSQL and Redshift's SQL on PostgreSQL.

The checks are `warn` here so that every batch is published and every result recorded: what is
asserted is the verdict, the observed value and the message stored in `feedline_audit.checks`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from quality_data import load_rows, make_feed, order, orders, results, select

from feedline.ledger import Ledger, utcnow
from feedline.warehouse.base import Warehouse


@dataclass(frozen=True)
class Case:
    check: dict[str, Any]
    batch: list[dict[str, Any]]
    passed: bool
    observed: float | None
    message: str  # a fragment; {target} and {schema} are filled in
    before: tuple[list[dict[str, Any]], ...] = ()  # batches loaded first
    mode: str = "append"
    approx: float = 1e-9
    expected: str | None = None


UNIQUE = {"check": "unique", "columns": ["order_id"]}
ROWS = {"check": "row_count", "min": 2, "max": 3}
CHANGE = {"check": "row_count_change", "max_change": 0.5, "over_last": 2}
NULLS = {"check": "null_rate", "column": "email", "max": 0.25}
SUM = {"check": "sum", "column": "amount", "min": 0}
AVG = {"check": "avg", "column": "quantity", "min": 1, "max": 20}
FRESH = {"check": "freshness", "column": "ordered_at", "max_age_hours": 48}
REFS = {"check": "references", "column": "country", "table": "countries", "key": "code"}
BUILT = utcnow()  # the cases' timestamps are relative to when this module was imported
HISTORY = (orders(range(100, 104)), orders(range(200, 210)), orders(range(300, 310)))

CASES: dict[str, Case] = {
    "unique passes on new keys": Case(
        UNIQUE, orders([1, 2, 3]), True, 0, "no key (order_id) of the batch repeats in {target}",
        before=(orders([4]),), expected="no repeated key",
    ),
    "unique fails on a key an earlier append loaded": Case(
        UNIQUE, orders([2, 3, 5]), False, 2,
        "2 key(s) (order_id) occur more than once in {target}, e.g. (2), (3)", before=(orders([1, 2, 3]),),
    ),
    "unique passes when an upsert replaces the key": Case(
        UNIQUE, orders([2, 3]), True, 0, "no key (order_id)", before=(orders([1, 2]),), mode="upsert"
    ),
    "unique over two columns fails": Case(
        {"check": "unique", "columns": ["country", "email"]},
        [order(1, email="a@x"), order(2, email="a@x"), order(3, email=None), order(4, email=None)],
        False, 1, "1 key(s) (country, email) occur more than once in {target}, e.g. ('DE', 'a@x')",
    ),
    "row_count passes within bounds": Case(
        ROWS, orders([1, 2, 3]), True, 3, "3 rows (expected between 2 and 3)"
    ),
    "row_count fails above max": Case(
        ROWS, orders([1, 2, 3, 4]), False, 4, "4 rows (expected between 2 and 3)"
    ),
    "row_count_change passes without history": Case(
        CHANGE, orders(range(10)), True, None, "no earlier load of the feed to compare with"
    ),
    "row_count_change passes within the change": Case(
        CHANGE, orders(range(12)), True, 0.2,
        "12 rows vs a mean of 10 over the last 2 load(s): +20% (expected within ±50% of the mean rows of "
        "the last 2 loads)",
        before=HISTORY,
    ),
    "row_count_change fails beyond the change": Case(
        CHANGE, orders(range(16)), False, 0.6, "16 rows vs a mean of 10 over the last 2 load(s): +60%",
        before=HISTORY,
    ),
    "null_rate passes at the limit": Case(
        NULLS, [order(1, email=None), *orders([2, 3, 4])], True, 0.25,
        "1 of 4 rows (25%) have no email (expected at most 25% null)",
    ),
    "null_rate fails above the limit": Case(
        NULLS, [order(1, email=None), order(2, email=None), *orders([3, 4])], False, 0.5,
        "2 of 4 rows (50%) have no email",
    ),
    "sum passes": Case(SUM, orders([1, 2, 3]), True, 31.5, "the sum of amount is 31.5 (expected at least 0)"),
    "sum fails below min": Case(
        SUM, [order(1, amount=Decimal("-40.25")), order(2)], False, -29.75, "the sum of amount is -29.75"
    ),
    "avg passes": Case(
        AVG, [order(1, quantity=1), order(2, quantity=2)], True, 1.5,
        "the average of quantity is 1.5 (expected between 1 and 20)",
    ),
    "avg fails above max": Case(
        AVG, [order(1, quantity=30), order(2, quantity=21)], False, 25.5, "the average of quantity is 25.5"
    ),
    "avg of only nulls is not measured": Case(
        AVG, orders([1, 2], quantity=None), True, None, "no value of quantity to average"
    ),
    "freshness passes": Case(
        FRESH, orders([1, 2]), True, 1.0, "h old (expected newest value at most 48 h old)", approx=0.05
    ),
    "freshness fails on old data": Case(
        FRESH, orders([1, 2], ordered_at=utcnow().replace(microsecond=0) - timedelta(hours=72)), False,
        72.0, "h old (expected newest value at most 48 h old)", approx=0.05,
    ),
    "freshness fails without values": Case(
        FRESH, orders([1], ordered_at=None), False, None, "the batch has no value of ordered_at"
    ),
    "references pass": Case(
        REFS, [order(1), order(2, country="FR"), order(3, country=None)], True, 0,
        "every value of country is in {schema}.countries.code",
    ),
    "references fail on missing values": Case(
        REFS, [order(1), order(2, country="XX"), order(3, country="ZZ"), order(4, country="XX")], False, 2,
        "2 value(s) of country are missing from {schema}.countries.code, e.g. 'XX', 'ZZ'",
    ),
    "references fail when the table is missing": Case(
        {**REFS, "table": "nations"}, orders([1]), False, None,
        "{schema}.nations.code does not exist; create it, or fix the check's schema, table or key",
    ),
}  # fmt: skip


@pytest.fixture
def warehouse(any_warehouse: Warehouse) -> Warehouse:
    Ledger(any_warehouse).ensure()
    schema = any_warehouse.dialect.default_schema
    with any_warehouse.transaction() as tx:
        tx.execute(f'CREATE TABLE "{schema}"."countries" ("code" VARCHAR(2))')
        tx.execute(f"""INSERT INTO "{schema}"."countries" VALUES ('DE'), ('FR')""")
    return any_warehouse


@pytest.mark.parametrize("case", list(CASES.values()), ids=list(CASES))
def test_check_kind(warehouse: Warehouse, tmp_path: Path, case: Case) -> None:
    feed = make_feed({**case.check, "severity": "warn"}, mode=case.mode)
    for rows in case.before:
        load_rows(warehouse, feed, tmp_path, rows)
    file_id, outcome = load_rows(warehouse, feed, tmp_path, case.batch)
    assert outcome.rows_loaded == len(case.batch)  # a warn check never blocks

    label = feed.checks[0].label
    recorded = results(warehouse, file_id)
    assert list(recorded) == [label]
    severity, passed, observed, expected, message = recorded[label]
    assert (severity, passed) == ("warn", case.passed), message
    if case.observed is None:
        assert observed is None
    else:
        drift = 0.0  # collection may happen minutes before the test runs: freshness ages meanwhile
        if case.check["check"] == "freshness":
            drift = (utcnow() - BUILT).total_seconds() / 3600
        assert observed == pytest.approx(case.observed + drift, abs=case.approx)
    target, schema = warehouse.target(feed), warehouse.target(feed).schema
    assert case.message.format(target=target, schema=schema) in message
    assert message.endswith(f"(expected {expected})")
    if case.expected is not None:
        assert expected == case.expected


def test_every_kind_is_covered() -> None:
    from feedline.quality.spec import CheckKind

    covered = {c.check["check"] for c in CASES.values()}
    assert covered == {k.value for k in CheckKind}
    for kind in covered:
        verdicts = {c.passed for c in CASES.values() if c.check["check"] == kind}
        assert verdicts == {True, False}, kind


def test_a_batch_is_only_its_own_rows(warehouse: Warehouse, tmp_path: Path) -> None:
    """Aggregates read the rows carrying this file's lineage id, not the rows of earlier files."""
    feed = make_feed({"check": "sum", "column": "amount", "max": 25, "severity": "warn"})
    load_rows(warehouse, feed, tmp_path, orders([1, 2]))
    file_id, _ = load_rows(warehouse, feed, tmp_path, orders([3, 4]))
    assert results(warehouse, file_id)["sum_amount"][1:3] == (True, 21.0)
    assert select(warehouse, f"SELECT count(*) FROM {warehouse.target(feed)}") == [(4,)]
