"""The checks as a gate of the exactly-once load: an `error` failure leaves the target byte-for-byte
unchanged and still records its results; a `warn` failure publishes, records and logs; no checks, no SQL."""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from quality_data import dump, load_rows, make_feed, order, orders, register, results, select, write_batch

from feedline.errors import QualityCheckError, TransientError
from feedline.ledger import FileState, Ledger
from feedline.warehouse.base import Tx, Warehouse

GATE = (
    {"check": "unique", "columns": ["order_id"]},
    {"check": "null_rate", "column": "email", "max": 0.1, "severity": "warn"},
    {"check": "row_count", "min": 1},
    {"check": "sum", "column": "amount", "max": 100},
)
# order 3 is loaded already; order 4 has no email; order 5 pushes the sum to 521
BAD_BATCH = [order(3), order(4, email=None), order(5, amount=Decimal("500.00"))]


@pytest.fixture
def warehouse(any_warehouse: Warehouse) -> Warehouse:
    Ledger(any_warehouse).ensure()
    return any_warehouse


def load(warehouse: Warehouse, feed: Any, file_id: str, rows: Sequence[dict[str, Any]], folder: Path) -> Any:
    parquet = write_batch(folder, rows)
    return warehouse.load(
        feed, file_id, parquet, rows_in=len(rows), rows_rejected=0, duplicates=0,
        clean_uri=str(parquet), rejected_uri="",
    )  # fmt: skip


@pytest.mark.parametrize("mode", ["append", "upsert", "replace"])
def test_a_failing_error_check_leaves_the_target_unchanged_and_records_why(
    warehouse: Warehouse, tmp_path: Path, mode: str
) -> None:
    feed = make_feed(*GATE, mode=mode)
    first, _ = load_rows(warehouse, feed, tmp_path, orders([1, 2, 3]))
    before = dump(warehouse, feed)
    assert before[0] == 3
    file_id = register(warehouse, feed)

    with pytest.raises(QualityCheckError) as info:
        load(warehouse, feed, file_id, BAD_BATCH, tmp_path)

    assert dump(warehouse, feed) == before  # the upsert's delete and the replace's delete rolled back too
    entry = Ledger(warehouse).get(file_id)
    assert entry is not None
    assert (entry.state, entry.rows_loaded, entry.loaded_at) == (FileState.loading, None, None)
    message = str(info.value)
    assert message.startswith("orders: loading batch")
    assert f"(file {file_id}) into {warehouse.target(feed)}: " in message
    failed = {"null_rate_email": "warn", "sum_amount": "error"} | (
        {"unique_order_id": "error"} if mode == "append" else {}
    )
    assert f"{len(failed)} batch check(s) failed, nothing was published: " in message
    for label, severity in failed.items():
        assert f"{label} [{severity}]: " in message
    assert "the sum of amount is 521 (expected at most 100)" in message
    assert "row_count [" not in message  # it passed

    recorded = results(warehouse, file_id)  # written after the rollback, in a transaction of their own
    assert {label: r[1] for label, r in recorded.items()} == {
        "unique_order_id": mode != "append", "null_rate_email": False, "row_count": True, "sum_amount": False
    }  # fmt: skip
    assert recorded["sum_amount"][2] == pytest.approx(521.0)
    assert [r[1] for r in results(warehouse, first).values()] == [True] * 4
    staging = select(
        warehouse, "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'feedline_staging'"
    )
    assert staging == [(0,)]


def test_a_blocked_file_loads_once_its_batch_is_fixed(warehouse: Warehouse, tmp_path: Path) -> None:
    feed = make_feed(*GATE)
    load_rows(warehouse, feed, tmp_path, orders([1, 2, 3]))
    file_id = register(warehouse, feed)
    with pytest.raises(QualityCheckError):
        load(warehouse, feed, file_id, BAD_BATCH, tmp_path)
    outcome = load(warehouse, feed, file_id, orders([4, 5]), tmp_path)  # e.g. a retry with fixed data
    assert (outcome.rows_loaded, outcome.already_loaded) == (2, False)
    assert dump(warehouse, feed)[0] == 5
    checked = select(
        warehouse,
        f'SELECT count(*) FROM "feedline_audit"."checks" WHERE "file_id" = {warehouse.dialect.param}',
        [file_id],
    )
    assert checked == [(8,)]  # both attempts are on record


def test_a_failing_warn_check_publishes_records_and_logs(
    warehouse: Warehouse, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    feed = make_feed({"check": "null_rate", "column": "email", "max": 0, "severity": "warn"})
    with caplog.at_level(logging.INFO, logger="feedline.quality.checks"):
        file_id, outcome = load_rows(warehouse, feed, tmp_path, [order(1, email=None), order(2)])
    assert outcome.rows_loaded == 2
    assert dump(warehouse, feed)[0] == 2
    entry = Ledger(warehouse).get(file_id)
    assert entry is not None and entry.state is FileState.loaded
    assert results(warehouse, file_id)["null_rate_email"][:3] == ("warn", False, 0.5)
    lines = [r for r in caplog.records if r.getMessage().startswith("feedline.check ")]
    assert [r.levelno for r in lines] == [logging.WARNING]
    assert (
        lines[0]
        .getMessage()
        .startswith(
            f"feedline.check feed=orders file_id={file_id} check=null_rate_email severity=warn passed=false "
            "observed=0.5 expected='at most 0% null' message='1 of 2 rows (50%) have no email"
        )
    )


def test_results_commit_with_their_batch(
    warehouse: Warehouse, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A passing batch's results are written in the load's transaction: when the load fails after the
    checks (here: the connection drops as the ledger is marked), neither rows nor results remain."""
    feed = make_feed({"check": "row_count", "min": 1})
    warehouse.ensure_table(feed)
    file_id = register(warehouse, feed)
    mark = Ledger.mark

    def lost_connection(self: Ledger, file_id: str, state: FileState, **kwargs: Any) -> Any:
        if state is FileState.loaded:
            raise TransientError("connection lost")
        return mark(self, file_id, state, **kwargs)

    monkeypatch.setattr(Ledger, "mark", lost_connection)
    with pytest.raises(TransientError, match="connection lost"):
        load(warehouse, feed, file_id, orders([1]), tmp_path)
    monkeypatch.undo()
    assert results(warehouse, file_id) == {}
    assert select(warehouse, f"SELECT count(*) FROM {warehouse.target(feed)}") == [(0,)]
    load(warehouse, feed, file_id, orders([1]), tmp_path)  # the retry checks and records once
    assert results(warehouse, file_id)["row_count"][:3] == ("error", True, 1.0)


def test_a_feed_without_checks_runs_no_check_sql(
    warehouse: Warehouse, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    statements: list[str] = []
    execute = Tx.execute

    def spy(self: Tx, sql: str, params: Sequence[Any] = ()) -> None:
        statements.append(re.sub("[0-9a-f]{32}", "<file id>", sql))  # in staging tables' names
        execute(self, sql, params)

    load_rows(warehouse, make_feed(), tmp_path, orders([1]))  # creates the table: not measured
    monkeypatch.setattr(Tx, "execute", spy)
    load_rows(warehouse, make_feed(), tmp_path, orders([2, 3]))
    plain = list(statements)
    statements.clear()
    checked = make_feed({"check": "row_count", "min": 1}, {"check": "sum", "column": "amount", "min": 0})
    load_rows(warehouse, checked, tmp_path, orders([4, 5]))

    assert not any('"feedline_audit"."checks"' in sql for sql in plain)
    extra = [sql for sql in statements if sql not in plain]
    assert len(statements) == len(plain) + 2, extra  # row_count reads the load's count: no query
    assert [sql.split()[0] for sql in extra] == ["SELECT", "INSERT"]
    assert 'INSERT INTO "feedline_audit"."checks"' in extra[1]
