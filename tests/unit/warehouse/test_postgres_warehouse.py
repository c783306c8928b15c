"""PostgreSQL-only behaviour on the real server: concurrent registration, a load's connection killed midway,
lock timeouts, read-only sessions, and driver errors translated into the two families."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
import pytest
from clean_files import load, make_feed, row, select, staging_tables, target, write_parquet
from psycopg import errors

from feedline.contract import Feed
from feedline.errors import TerminalError, TransientError
from feedline.ledger import FileState, Ledger, LedgerEntry, Registration
from feedline.storage.base import ObjectInfo
from feedline.warehouse.base import Tx, Warehouse
from feedline.warehouse.postgres import PostgresWarehouse
from warehouses import database_url, make_warehouse

Register = Callable[[Feed], str]


@pytest.fixture(params=["postgres", "redshift"])
def warehouse(request: pytest.FixtureRequest, postgres_url: str, tmp_path: Path) -> Warehouse:
    """PostgreSQL, and Redshift's SQL on PostgreSQL (row locks vs LOCK TABLE)."""
    wh = make_warehouse(str(request.param), tmp_path, postgres_url)
    Ledger(wh).ensure()
    return wh


@pytest.fixture
def postgres(postgres_url: str) -> PostgresWarehouse:
    wh = PostgresWarehouse(postgres_url, lock_timeout=10)
    Ledger(wh).ensure()
    return wh


@contextmanager
def holding(url: str, sql: str) -> Iterator[psycopg.Connection[Any]]:
    """Another session that ran `sql` in an open transaction (holding its locks) until the block ends."""
    with psycopg.connect(url) as conn:
        conn.execute(sql)
        try:
            yield conn
        finally:
            conn.rollback()


def in_thread(fn: Callable[[], Any]) -> tuple[threading.Thread, dict[str, Any]]:
    out: dict[str, Any] = {}

    def run() -> None:
        try:
            out["result"] = fn()
        except BaseException as exc:
            out["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, out


def wait_for_lock_wait(url: str, timeout: float = 20) -> int:
    """The pid of the feedline session waiting for a lock in `url`'s database."""
    dbname = url.rsplit("/", 1)[1]
    deadline = time.monotonic() + timeout
    with psycopg.connect(url, autocommit=True) as conn:
        while time.monotonic() < deadline:
            found = conn.execute(
                "SELECT pid FROM pg_stat_activity WHERE datname = %s AND application_name = 'feedline' "
                "AND wait_event_type = 'Lock'",
                [dbname],
            ).fetchone()
            if found:
                return int(found[0])
            time.sleep(0.05)
    raise AssertionError("the load never waited for the lock")


def obj(n: int) -> ObjectInfo:
    return ObjectInfo(f"part-{n}.csv", 10, 0.0, f"sha256:{n}")


def test_concurrent_registrations_of_one_file_keep_one_row(postgres: PostgresWarehouse) -> None:
    """Both sessions see no row, then both insert: ON CONFLICT DO NOTHING leaves one row, `new` to one."""
    both_selected = threading.Barrier(2, timeout=20)

    class SelectThenWait(PostgresWarehouse):
        @contextmanager
        def transaction(self) -> Iterator[Tx]:
            with super().transaction() as tx:
                execute = tx.execute

                def wait_before_insert(sql: str, params: Any = ()) -> None:
                    if sql.startswith("INSERT"):
                        both_selected.wait()
                    execute(sql, params)

                tx.execute = wait_before_insert  # type: ignore[method-assign]
                yield tx

    racer = SelectThenWait(postgres.dsn, lock_timeout=10)
    threads = [in_thread(lambda: Ledger(racer).register("orders", [obj(1), obj(2)])) for _ in range(2)]
    for thread, _ in threads:
        thread.join(30)
    results: list[Registration] = [out["result"] for _, out in threads]
    assert sorted(len(r.new) for r in results) == [0, 2]
    assert sorted(len(r.known) for r in results) == [0, 2]
    winner = next(r for r in results if r.new)
    loser = next(r for r in results if r.known)
    assert sorted(e.file_id for e in loser.known) == sorted(e.file_id for e in winner.new)
    assert len(Ledger(postgres).entries("orders")) == 2


def test_many_concurrent_registrations_never_duplicate_a_file(warehouse: Warehouse) -> None:
    wanted = [obj(n) for n in range(40)]

    def register(offset: int) -> Registration:
        return Ledger(warehouse).register("orders", wanted[offset:] + wanted[:offset])

    threads = [in_thread(lambda offset=offset: register(offset)) for offset in (0, 13, 27)]  # type: ignore[misc]
    for thread, _ in threads:
        thread.join(60)
    results = [out.get("result") or out["error"] for _, out in threads]
    assert all(isinstance(r, Registration) for r in results), results
    assert sum(len(r.new) for r in results) == 40
    assert len({e.file_id for e in Ledger(warehouse).entries()}) == len(Ledger(warehouse).entries()) == 40


def test_ledger_has_an_index_for_the_sweep(postgres: PostgresWarehouse) -> None:
    rows = select(postgres, "SELECT indexdef FROM pg_indexes WHERE schemaname = 'feedline_audit'")
    assert any("(feed, state)" in r[0] for r in rows), rows


def test_a_load_whose_connection_is_killed_midway_is_transient_and_leaves_nothing(
    warehouse: Warehouse, register: Register, tmp_path: Path
) -> None:
    feed = make_feed("upsert")
    load(warehouse, feed, register(feed), write_parquet(tmp_path / "a.parquet", [row(1, "a"), row(2, "b")]))
    file_id = register(feed)
    parquet = write_parquet(tmp_path / "b.parquet", [row(2, "b2"), row(3, "c")])
    url = warehouse.dsn  # type: ignore[attr-defined]
    with holding(url, f"LOCK TABLE {target(warehouse)} IN ACCESS EXCLUSIVE MODE"):
        thread, out = in_thread(lambda: load(warehouse, feed, file_id, parquet))
        pid = wait_for_lock_wait(url)  # staged, now blocked publishing into the target
        with psycopg.connect(url, autocommit=True) as admin:
            assert admin.execute("SELECT pg_terminate_backend(%s)", [pid]).fetchone() == (True,)
        thread.join(30)
    assert isinstance(out.get("error"), TransientError), out
    assert f"orders: loading b.parquet (file {file_id})" in str(out["error"])
    assert [r[:2] for r in select(warehouse, f"SELECT id, name FROM {target(warehouse)} ORDER BY id")] == [
        (1, "a"),
        (2, "b"),
    ]
    entry = Ledger(warehouse).get(file_id)
    assert entry is not None
    assert (entry.state, entry.rows_loaded) == (FileState.loading, None)
    assert staging_tables(warehouse) == []
    assert load(warehouse, feed, file_id, parquet).rows_loaded == 2  # the retry loads it, once
    assert load(warehouse, feed, file_id, parquet).already_loaded
    names = select(warehouse, f"SELECT id, name, _feedline_file_id FROM {target(warehouse)} ORDER BY id")
    assert [r[:2] for r in names] == [(1, "a"), (2, "b2"), (3, "c")]
    assert {r[2] for r in names[1:]} == {file_id}


def test_a_lock_held_past_lock_timeout_is_transient(postgres: PostgresWarehouse, tmp_path: Path) -> None:
    feed = make_feed()
    entry: LedgerEntry = Ledger(postgres).register("orders", [obj(1)]).new[0]
    parquet = write_parquet(tmp_path / "a.parquet", [row(1, "a")])
    impatient = PostgresWarehouse(postgres.dsn, lock_timeout=0.3)
    lock_row = f"SELECT 1 FROM feedline_audit.files WHERE file_id = '{entry.file_id}' FOR UPDATE"
    with holding(postgres.dsn, lock_row):
        started = time.monotonic()
        with pytest.raises(TransientError, match="lock timeout"):
            load(impatient, feed, entry.file_id, parquet)
        assert time.monotonic() - started < 5
    assert Ledger(postgres).get(entry.file_id) == entry
    assert load(postgres, feed, entry.file_id, parquet).rows_loaded == 1  # once the lock is released


def test_read_only_sessions_refuse_writes(postgres: PostgresWarehouse) -> None:
    reader = PostgresWarehouse(postgres.dsn, read_only=True)
    assert Ledger(reader).summary() == []
    with pytest.raises(TerminalError, match="read-only"):
        reader.ensure_table(make_feed())


def test_unreachable_server_is_transient_and_a_bad_database_is_terminal(postgres_url: str) -> None:
    with pytest.raises(TransientError, match=r"127\.0\.0\.1:1/test: .*retrying may succeed"):
        Ledger(PostgresWarehouse("postgresql://u:secret@127.0.0.1:1/test", connect_timeout=2)).summary()
    missing = database_url("feedline_no_such_db")
    with pytest.raises(TerminalError, match="does not exist; check the warehouse URL") as info:
        Ledger(PostgresWarehouse(missing)).summary()
    assert "secret" not in str(info.value)


@pytest.mark.parametrize(
    ("error", "family", "advice"),
    [
        (errors.InvalidTextRepresentation, TerminalError, "make the table's column types match"),
        (errors.NumericValueOutOfRange, TerminalError, "widen the table's column type"),
        (errors.NotNullViolation, TerminalError, "a null in a NOT NULL column"),
        (errors.UndefinedColumn, TerminalError, "alter the table to match the contract"),
        (errors.InsufficientPrivilege, TerminalError, "grant the warehouse user"),
        (errors.AdminShutdown, TransientError, "retrying may succeed"),
        (errors.SerializationFailure, TransientError, "retrying may succeed"),
        (errors.DeadlockDetected, TransientError, "retrying may succeed"),
        (errors.LockNotAvailable, TransientError, "retrying may succeed"),
        (errors.QueryCanceled, TransientError, "retrying may succeed"),
        (errors.TooManyConnections, TransientError, "retrying may succeed"),
        (errors.InvalidPassword, TerminalError, "check the password"),
        (psycopg.OperationalError, TransientError, "retrying may succeed"),
        (psycopg.InterfaceError, TransientError, "retrying may succeed"),
    ],
)
def test_driver_errors_are_translated_with_what_to_do(
    error: type[psycopg.Error], family: type[Exception], advice: str
) -> None:
    wh = PostgresWarehouse("postgresql://feedline:secret@db.example:6543/wh")
    got = wh.translate_error(error("boom"))
    assert type(got) is family
    assert "PostgreSQL db.example:6543/wh: boom" in str(got)
    assert advice in str(got)
    assert "secret" not in str(got)
    other = ValueError("not a driver error")
    assert wh.translate_error(other) is other


def test_a_session_keeps_one_connection_and_each_transaction_commits_on_its_own(
    postgres: PostgresWarehouse, postgres_url: str
) -> None:
    def pid() -> int:
        with postgres.transaction() as tx:
            return int(tx.scalar("SELECT pg_backend_pid()"))

    def insert_and_die() -> None:
        with postgres.transaction() as tx:
            tx.execute("INSERT INTO session_t VALUES (2)")
            tx.execute("SELECT pg_terminate_backend(pg_backend_pid())")  # the connection dies mid-transaction

    with postgres.transaction() as tx:
        tx.execute("DROP TABLE IF EXISTS session_t")
        tx.execute("CREATE TABLE session_t (n int)")
    assert pid() != pid()  # outside a session: a connection per transaction
    with postgres.session():
        first = pid()
        with postgres.transaction() as tx:
            tx.execute("INSERT INTO session_t VALUES (1)")
        with psycopg.connect(postgres_url) as other:  # committed, seen by others before the session ends
            assert other.execute("SELECT n FROM session_t").fetchall() == [(1,)]
        with postgres.session():  # a nested session joins the outer one
            assert pid() == first
        thread, out = in_thread(pid)  # another thread connects on its own
        thread.join(timeout=20)
        assert out["result"] != first
        with pytest.raises(TransientError):
            insert_and_die()
        after = pid()  # the failed connection is not reused
        assert after != first
        assert pid() == after
    with psycopg.connect(postgres_url) as other:
        assert other.execute("SELECT n FROM session_t").fetchall() == [(1,)]
        alive = other.execute("SELECT count(*) FROM pg_stat_activity WHERE pid = %s", [after]).fetchone()
        assert alive == (0,)  # closed with the session
        other.execute("DROP TABLE session_t")
