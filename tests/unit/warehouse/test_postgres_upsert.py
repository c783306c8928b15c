"""PostgreSQL's upsert on the real server: a batch of keys too large for one hash batch is deleted by merge
join (the guard around the DELETE), a small one keeps the planner's choice, and the rows, the ledger and
staging come out as with any other upsert. Redshift and DuckDB have no guard. With `target.index_key` the
table's key is indexed and a small upsert deletes through the index instead of scanning the table."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from clean_files import load, make_feed, row, select, staging_tables, target, write_parquet

from feedline.contract import ColumnType
from feedline.ledger import FileState, Ledger
from feedline.storage.base import ObjectInfo
from feedline.warehouse.base import Tx
from feedline.warehouse.dialect import ColumnDef, TableRef
from feedline.warehouse.duckdb import DuckDBDialect
from feedline.warehouse.postgres import PostgresDialect, PostgresWarehouse
from feedline.warehouse.redshift import RedshiftDialect
from warehouses import TEST_ROLE, RedshiftOnPostgres, make_warehouse

# PostgreSQL's smallest work_mem: 64 kB times hash_mem_multiplier 2 holds ~2,000 bigint keys in one batch.
TINY_WORK_MEM = "64kB"
KEY = [ColumnDef("id", ColumnType("bigint"), nullable=False)]


class Observed(PostgresWarehouse):
    """Records, for each DELETE … USING from the target, the plan the server has for it at that moment and
    the enable_hashjoin in force, then the setting after the guard restored it."""

    def __init__(self, dsn: str, **kwargs: Any) -> None:
        super().__init__(dsn, **kwargs)
        self.plans: list[str] = []
        self.hash_join: list[str] = []
        self.statements: list[str] = []

    @contextmanager
    def transaction(self) -> Iterator[Tx]:
        with super().transaction() as tx:
            execute = tx.execute

            def observed(sql: str, params: Any = ()) -> None:
                self.statements.append(sql)
                deleting = sql.startswith('DELETE FROM "public"."orders" USING')
                if deleting:
                    execute(f"EXPLAIN {sql}", params)
                    self.plans.append("\n".join(str(r[0]) for r in tx.fetchall()))
                execute(sql, params)
                if deleting or sql.startswith("SET LOCAL enable_hashjoin"):
                    self.hash_join.append(str(tx.scalar("SHOW enable_hashjoin")))

            tx.execute = observed  # type: ignore[method-assign]
            yield tx


def register(warehouse: PostgresWarehouse, n: int) -> str:
    ledger = Ledger(warehouse)
    entry = ledger.register("orders", [ObjectInfo(f"file{n}.csv", n, 0.0, f"sha256:{n:064x}")]).new[0]
    ledger.mark(entry.file_id, FileState.transforming)
    ledger.mark(entry.file_id, FileState.loading)
    return entry.file_id


def rows(ids: range, name: str, repeat: int | None = None) -> list[dict[str, Any]]:
    """One row per id named `name`; with `repeat`, that id once more first, named 'stale' (the load keeps
    the last row of a repeated key)."""
    out = [row(i, name) for i in ids]
    return out if repeat is None else [row(repeat, "stale"), *out]


@pytest.fixture
def seeded(postgres_url: str, tmp_path: Path) -> Callable[..., Observed]:
    """A warehouse whose target holds ids 1..5000 named 'old', ANALYZEd as autovacuum leaves a table after
    a large load (the statistics are what make the planner pick a hash join for the DELETE)."""

    def make(work_mem: str) -> Observed:
        wh = Observed(postgres_url, lock_timeout=10, work_mem=work_mem)
        Ledger(wh).ensure()
        load(
            wh,
            make_feed("upsert"),
            register(wh, 1),
            write_parquet(tmp_path / "old.parquet", rows(range(1, 5001), "old")),
        )
        with wh.transaction() as tx:
            tx.execute(f"ANALYZE {target(wh)}")
        wh.plans.clear()
        wh.hash_join.clear()
        return wh

    return make


def names_by_id(wh: PostgresWarehouse) -> dict[int, str]:
    return {int(r[0]): str(r[1]) for r in select(wh, f"SELECT id, name FROM {target(wh)}")}


@pytest.mark.parametrize(
    "repeat", [None, 4000], ids=["unique keys: key staging", "a repeated key: full staging"]
)
def test_a_batch_too_large_for_one_hash_batch_is_deleted_by_merge_join(
    seeded: Callable[..., Observed], tmp_path: Path, repeat: int | None
) -> None:
    wh = seeded(TINY_WORK_MEM)
    feed = make_feed("upsert")
    file_id = register(wh, 2)
    parquet = write_parquet(tmp_path / "new.parquet", rows(range(2501, 7501), "new", repeat))

    assert load(wh, feed, file_id, parquet).rows_loaded == 5000

    [plan] = wh.plans
    assert "Merge Join" in plan and "Hash Join" not in plan, plan
    assert wh.hash_join == ["off", "on"]  # off for the DELETE, back to the session's value after it
    names = names_by_id(wh)
    assert len(names) == 7500
    assert {i: names[i] for i in (1, 2500, 2501, 4000, 5000, 7500)} == {
        1: "old",
        2500: "old",
        2501: "new",
        4000: "new",
        5000: "new",
        7500: "new",
    }
    assert select(wh, f"SELECT count(*) FROM {target(wh)} WHERE _feedline_file_id = '{file_id}'") == [(5000,)]
    entry = Ledger(wh).get(file_id)
    assert entry is not None and (entry.state, entry.rows_loaded) == (FileState.loaded, 5000)
    assert staging_tables(wh) == []


def test_without_the_guard_the_same_delete_would_be_a_spilling_hash_join(
    seeded: Callable[..., Observed], tmp_path: Path
) -> None:
    """What the guard prevents: with the statistics and work_mem above, PostgreSQL plans a hash join."""
    wh = seeded(TINY_WORK_MEM)
    file_id = register(wh, 2)
    parquet = write_parquet(tmp_path / "new.parquet", rows(range(2501, 7501), "new"))
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(PostgresDialect, "guards_delete_join", False)
        load(wh, make_feed("upsert"), file_id, parquet)
    [plan] = wh.plans
    assert "Hash Join" in plan, plan
    assert len(names_by_id(wh)) == 7500


def test_a_batch_that_fits_one_hash_batch_keeps_the_planners_choice(
    seeded: Callable[..., Observed], tmp_path: Path
) -> None:
    wh = seeded("64MB")
    file_id = register(wh, 2)
    parquet = write_parquet(tmp_path / "new.parquet", rows(range(4901, 5101), "new"))

    assert load(wh, make_feed("upsert"), file_id, parquet).rows_loaded == 200

    [plan] = wh.plans
    assert "Hash Join" in plan, plan
    assert wh.hash_join == ["on", "on"]
    names = names_by_id(wh)
    assert (len(names), names[4900], names[4901], names[5100]) == (5100, "old", "new", "new")


def test_the_guard_compares_the_staged_keys_with_the_servers_hash_memory(postgres_url: str) -> None:
    before, after = PostgresDialect().delete_join_guard(KEY) or ("", "")
    wh = PostgresWarehouse(postgres_url, work_mem="1MB")  # 2 MB of hash memory: ~32,000 keys of 64 bytes
    for staged, expected in ((32_000, "on"), (33_000, "off")):
        with wh.transaction() as tx:
            tx.execute(before, [staged])
            assert tx.scalar("SHOW enable_hashjoin") == expected
            tx.execute(after)
            assert tx.scalar("SHOW enable_hashjoin") == "on"


def test_redshift_and_duckdb_have_no_guard(postgres_url: str, tmp_path: Path) -> None:
    assert RedshiftDialect().delete_join_guard(KEY) is None
    assert DuckDBDialect().delete_join_guard(KEY) is None
    redshift = RedshiftOnPostgres(postgres_url, iam_role=TEST_ROLE)
    Ledger(redshift).ensure()
    seen: list[str] = []
    execute = Tx.execute

    def recording(self: Tx, sql: str, params: Any = ()) -> None:
        seen.append(sql)
        execute(self, sql, params)

    feed = make_feed("upsert")
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(Tx, "execute", recording)
        for n, ids in ((1, range(1, 4)), (2, range(2, 6))):
            parquet = write_parquet(tmp_path / f"{n}.parquet", rows(ids, f"v{n}"))
            load(redshift, feed, register(redshift, n), parquet)
    assert any(s.startswith("DELETE FROM") for s in seen)
    assert not [s for s in seen if "enable_hashjoin" in s]
    assert names_by_id(redshift) == {1: "v1", 2: "v2", 3: "v2", 4: "v2", 5: "v2"}


def key_indexes(wh: PostgresWarehouse) -> list[tuple[str, str]]:
    return [
        (str(name), str(definition).split(" USING ")[1])
        for name, definition in select(
            wh, "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'orders' ORDER BY indexname"
        )
    ]


def test_index_key_indexes_the_key_once_and_a_small_upsert_deletes_through_it(
    postgres_url: str, tmp_path: Path
) -> None:
    wh = Observed(postgres_url, lock_timeout=10)
    Ledger(wh).ensure()
    feed = make_feed("upsert", index_key=True)
    wh.ensure_table(feed)  # discover's step: the table, then its key index in a transaction of its own
    wh.ensure_table(feed)
    load(wh, feed, register(wh, 1), write_parquet(tmp_path / "old.parquet", rows(range(1, 50_001), "old")))
    with wh.transaction() as tx:
        tx.execute(f"ANALYZE {target(wh)}")
    wh.plans.clear()

    parquet = write_parquet(tmp_path / "new.parquet", rows(range(49_991, 50_011), "new"))
    assert load(wh, feed, register(wh, 2), parquet).rows_loaded == 20

    name = PostgresDialect().key_index_name(TableRef("public", "orders"), ["id"])
    assert key_indexes(wh) == [(name, "btree (id)")]
    created = [s for s in wh.statements if s.startswith("CREATE INDEX") and name in s]
    assert len(created) == 1  # the second ensure_table found it; loads never build it
    [plan] = wh.plans
    assert name in plan and "Seq Scan on orders" not in plan, plan
    names = names_by_id(wh)
    assert (len(names), names[49_990], names[49_991], names[50_010]) == (50_010, "old", "new", "new")
    assert staging_tables(wh) == []


def test_index_key_builds_the_index_on_a_table_that_already_holds_rows_and_reuses_the_owners(
    postgres_url: str, tmp_path: Path
) -> None:
    wh = PostgresWarehouse(postgres_url, lock_timeout=10)
    Ledger(wh).ensure()
    plain = make_feed("upsert")
    wh.ensure_table(plain)
    load(wh, plain, register(wh, 1), write_parquet(tmp_path / "a.parquet", rows(range(1, 4), "a")))
    assert key_indexes(wh) == []
    feed = make_feed("upsert", index_key=True)
    wh.ensure_table(feed)
    [(name, how)] = key_indexes(wh)
    assert name.startswith("orders_feedline_key_") and how == "btree (id)"
    load(wh, feed, register(wh, 2), write_parquet(tmp_path / "b.parquet", rows(range(3, 5), "b")))
    assert names_by_id(wh) == {1: "a", 2: "a", 3: "b", 4: "b"}

    with wh.transaction() as tx:  # the owner's own index on the key (e.g. a primary key) serves as well
        tx.execute(f"DROP INDEX {name}")
        tx.execute(f"ALTER TABLE {target(wh)} ADD CONSTRAINT orders_pkey PRIMARY KEY (id, name)")
    wh.ensure_table(feed)
    assert key_indexes(wh) == [("orders_pkey", "btree (id, name)")]


def test_index_key_without_owning_the_table_warns_and_loads_without_it(
    postgres_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    owner = PostgresWarehouse(postgres_url, lock_timeout=10)
    Ledger(owner).ensure()
    owner.ensure_table(make_feed("upsert"))
    loader_role = f"feedline_loader_{uuid.uuid4().hex[:8]}"
    with owner.transaction() as tx:
        tx.execute("CREATE SCHEMA IF NOT EXISTS feedline_staging")
        tx.execute(f"CREATE ROLE {loader_role} LOGIN")
        tx.execute(f"GRANT USAGE, CREATE ON SCHEMA public, feedline_audit, feedline_staging TO {loader_role}")
        database = tx.scalar("SELECT current_database()")
        tx.execute(f'GRANT CREATE ON DATABASE "{database}" TO {loader_role}')  # staging's CREATE SCHEMA
        tables = "ALL TABLES IN SCHEMA public, feedline_audit"
        tx.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON {tables} TO {loader_role}")
    try:
        loader = PostgresWarehouse(f"{postgres_url}?user={loader_role}", lock_timeout=10)
        feed = make_feed("upsert", index_key=True)
        with caplog.at_level("WARNING", logger="feedline.warehouse.base"):
            loader.ensure_table(feed)
        assert "does not own" in caplog.text and "CREATE INDEX" in caplog.text
        assert key_indexes(owner) == []
        parquet = write_parquet(tmp_path / "a.parquet", rows(range(1, 4), "a"))
        assert load(loader, feed, register(owner, 1), parquet).rows_loaded == 3
    finally:
        with owner.transaction() as tx:
            tx.execute(f"DROP OWNED BY {loader_role}")
            tx.execute(f"DROP ROLE {loader_role}")


@pytest.mark.parametrize("kind", ["redshift", "duckdb"])
def test_index_key_is_ignored_by_redshift_and_duckdb(postgres_url: str, tmp_path: Path, kind: str) -> None:
    """Both load the feed as without the option, and no index appears (DuckDB scans columns; Redshift
    has no indexes)."""
    wh = make_warehouse(kind, tmp_path, postgres_url)
    Ledger(wh).ensure()
    feed = make_feed("upsert", index_key=True)
    wh.ensure_table(feed)
    for n, ids in ((1, range(1, 4)), (2, range(2, 6))):
        load(wh, feed, register(wh, n), write_parquet(tmp_path / f"{n}.parquet", rows(ids, f"v{n}")))
    assert names_by_id(wh) == {1: "v1", 2: "v2", 3: "v2", 4: "v2", 5: "v2"}
    sql = (
        "SELECT count(*) FROM duckdb_indexes() WHERE table_name = 'orders'"
        if kind == "duckdb"
        else "SELECT count(*) FROM pg_indexes WHERE tablename = 'orders'"
    )
    assert select(wh, sql) == [(0,)]
