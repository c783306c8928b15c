"""Regression (fault suite, two `feedline run` at once on a new database): sessions creating the ledger and
the target table at the same moment all succeed; PostgreSQL used to fail the losers of the race."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from clean_files import make_feed
from psycopg import errors

from feedline.errors import TransientError
from feedline.ledger import Ledger
from feedline.warehouse.postgres import PostgresWarehouse
from warehouses import make_warehouse

SESSIONS = 6


@pytest.mark.parametrize("kind", ["postgres", "redshift"])
@pytest.mark.parametrize("round_", range(3))
def test_sessions_creating_the_ledger_and_table_at_once_all_succeed(
    kind: str, round_: int, postgres_url: str, tmp_path: Path
) -> None:
    feed = make_feed("upsert")
    start = threading.Barrier(SESSIONS)
    errors: list[BaseException] = []

    def setup() -> None:
        warehouse = make_warehouse(kind, tmp_path, postgres_url)
        start.wait()
        try:
            Ledger(warehouse).ensure()
            warehouse.ensure_table(feed)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=setup) for _ in range(SESSIONS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    warehouse = make_warehouse(kind, tmp_path, postgres_url)
    assert Ledger(warehouse).entries() == []
    assert warehouse.count_rows(feed) == 0


@pytest.mark.parametrize("error", [errors.DuplicateSchema, errors.DuplicateTable, errors.DuplicateObject])
def test_an_object_created_meanwhile_by_another_session_is_transient(error: type[errors.Error]) -> None:
    """CREATE … IF NOT EXISTS racing another session may say the type or table 'already exists'."""
    got = PostgresWarehouse("postgresql://db.example/wh").translate_error(
        error('type "orders" already exists')
    )
    assert type(got) is TransientError
    assert "a concurrent CREATE" in str(got)
