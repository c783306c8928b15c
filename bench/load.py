"""Benchmark feedline's exactly-once load against each engine's raw bulk path, on DuckDB and PostgreSQL.

    .venv/bin/python bench/load.py [--rows 10000000] [--backends duckdb,postgres] [--repeat 1] [--steps]

Two clean Parquet files typed like the orders contract's transform output are generated once (cached in
bench/out/): ids 1..N, and ids from 0.9 N + 1 (a tenth overlap). Raw paths: DuckDB `CREATE TABLE AS
SELECT * FROM read_parquet`; PostgreSQL ADBC ingest into a fresh table (DESIGN §6's fastest measured
path). feedline: `Warehouse.load` (checks, publish, ledger mark, one transaction): append into an empty
table; upsert of the same file again (every key replaced: the worst case); upsert of the second file
(a tenth of its keys replaced, the rest new). PostgreSQL runs in a fresh database, dropped afterwards.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
OUT = HERE / "out"
ORDERS = REPO / "feeds" / "orders.yaml"
POSTGRES_URL = os.environ.get("BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
CHUNK = 1_000_000
ROW_GROUP = 65_536


def clean_parquet(rows: int, first_id: int = 1) -> Path:
    """The cached clean orders file of `rows` rows with ascending unique order ids from `first_id` (as
    the transform writes the sample exports), in the transform's Arrow types."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    path = OUT / f"load_orders_{rows}{'' if first_id == 1 else f'_from_{first_id}'}.parquet"
    if path.exists():
        return path
    OUT.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(first_id)
    first = pa.array(["Ana", "John", "Ines", "Wei", "Olga", "Kofi", "Marta", "Lars", "Yuki", "Sam"])
    last = pa.array(
        ["Chen", "Berg", "Silva", "Novak", "Okafor", "Smith", "Garcia", "Kim", "Rossi", "Ivanova"]
    )
    countries = pa.array(["ES", "NL", "FR", "DE", "US", "GB", "JP", "BR", "IN", "PL"])
    statuses = pa.array(["shipped", "cancelled", "pending", "delivered", None])
    schema = pa.schema([
        ("order_id", pa.int64()), ("customer_name", pa.large_string()), ("customer_email", pa.large_string()),
        ("country", pa.large_string()), ("amount", pa.decimal128(12, 2)), ("quantity", pa.int32()),
        ("status", pa.large_string()), ("ordered_at", pa.timestamp("us")), ("is_gift", pa.bool_()),
    ])  # fmt: skip
    started = time.perf_counter()
    partial = path.with_suffix(".partial")
    with pq.ParquetWriter(partial, schema, compression="zstd") as writer:
        for start in range(0, rows, CHUNK):
            n = min(CHUNK, rows - start)
            f, la = first.take(rng.integers(0, 10, n)), last.take(rng.integers(0, 10, n))
            name = pc.binary_join_element_wise(f, last.take(rng.integers(0, 10, n)), " ")
            email = pc.binary_join_element_wise(
                pc.utf8_lower(f), ".", pc.utf8_lower(la), pa.array(rng.integers(0, 100, n)).cast(pa.string()),
                "@example.com", "",
            )  # fmt: skip
            cents = rng.integers(-100_000_000, 100_000_000, n)
            words = np.stack([cents, cents >> 63], axis=1).astype("<i8")
            amount = pa.Array.from_buffers(pa.decimal128(12, 2), n, [None, pa.py_buffer(words)])
            quantity = pa.array(rng.integers(1, 50, n).astype(np.int32), mask=rng.random(n) < 0.1)
            seconds = rng.integers(1_672_531_200, 1_735_603_200, n) * 1_000_000
            batch = pa.record_batch([
                pa.array(np.arange(first_id + start, first_id + start + n)), name.cast(pa.large_string()),
                email.cast(pa.large_string()), countries.take(rng.integers(0, 10, n)).cast(pa.large_string()),
                amount, quantity, statuses.take(rng.integers(0, 5, n)).cast(pa.large_string()),
                pa.array(seconds, pa.int64()).cast(pa.timestamp("us")), pa.array(rng.random(n) < 0.2),
            ], schema=schema)  # fmt: skip
            writer.write_batch(batch, row_group_size=ROW_GROUP)
    partial.rename(path)
    print(f"generated {path.name}: {rows} rows, {path.stat().st_size / 1e6:.0f} MB in "
          f"{time.perf_counter() - started:.1f}s", flush=True)  # fmt: skip
    return path


def timed(fn: Callable[[], Any]) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


@contextmanager
def statement_timings(enabled: bool) -> Iterator[None]:
    """With --steps, print how long each statement of a load took (the slow ones)."""
    from feedline.warehouse.base import Tx

    if not enabled:
        yield
        return
    original = Tx.execute

    def execute(self: Tx, sql: str, params: Any = ()) -> None:
        started = time.perf_counter()
        original(self, sql, params)
        took = time.perf_counter() - started
        if took > 0.05:
            print(f"      {took:7.2f}s  {sql[:100]}", flush=True)

    from feedline.warehouse.postgres import PostgresWarehouse

    copy = PostgresWarehouse._copy

    def timed_copy(self: PostgresWarehouse, tx: Tx, columns: Any, sql: str, *args: Any, **kwargs: Any) -> int:
        started = time.perf_counter()
        rows = copy(self, tx, columns, sql, *args, **kwargs)
        print(f"      {time.perf_counter() - started:7.2f}s  {sql[:100]}", flush=True)
        return rows

    Tx.execute = execute  # type: ignore[method-assign]
    PostgresWarehouse._copy = timed_copy  # type: ignore[method-assign]
    try:
        yield
    finally:
        Tx.execute = original  # type: ignore[method-assign]
        PostgresWarehouse._copy = copy  # type: ignore[method-assign]


def feedline_loads(warehouse: Any, files: dict[str, Path], steps: bool) -> dict[str, float]:
    """Seconds of each feedline load, in order: `append` into an empty table; `upsert` of the same file
    again (every key replaced); `upsert-10%` of a file whose first tenth of keys exist (the rest new)."""
    from feedline.contract import LoadMode, load_feed
    from feedline.ledger import Ledger
    from feedline.storage.base import ObjectInfo

    results = {}
    ledger = Ledger(warehouse)
    ledger.ensure()
    for n, (name, parquet) in enumerate(files.items()):
        mode = LoadMode(name.split("-")[0])
        feed = load_feed(ORDERS)
        feed = feed.model_copy(update={"target": feed.target.model_copy(update={"mode": mode})})
        file_id = ledger.register(feed.name, [ObjectInfo(f"bench-{n}.csv", n, 0.0, f"x:{n}")]).new[0].file_id
        warehouse.ensure_table(feed)
        if steps:
            print(f"    {name}:", flush=True)
        with statement_timings(steps):
            results[name] = timed(lambda f=feed, i=file_id, p=parquet: warehouse.load(  # type: ignore[misc]
                f, i, p, rows_in=0, rows_rejected=0, duplicates=0, clean_uri=str(p), rejected_uri="",
            ))  # fmt: skip
    return results


def bench_duckdb(files: dict[str, Path], steps: bool) -> dict[str, float]:
    import duckdb

    from feedline.warehouse.duckdb import DuckDBWarehouse

    with tempfile.TemporaryDirectory(prefix="bench-load-", dir=OUT) as tmp:
        raw = duckdb.connect(str(Path(tmp) / "raw.duckdb"))
        sql = "CREATE TABLE raw AS SELECT * FROM read_parquet(?)"
        took = timed(lambda: raw.execute(sql, [str(files["append"])]))
        raw.close()
        return {"raw": took, **feedline_loads(DuckDBWarehouse(Path(tmp) / "w.duckdb"), files, steps)}


def bench_postgres(files: dict[str, Path], steps: bool) -> dict[str, float]:
    import adbc_driver_postgresql.dbapi as adbc
    import psycopg
    import pyarrow.parquet as pq

    from feedline.warehouse.postgres import PostgresWarehouse

    name = f"feedline_bench_{uuid.uuid4().hex[:12]}"
    url = f"{POSTGRES_URL.rpartition('/')[0]}/{name}"
    with psycopg.connect(POSTGRES_URL, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:

        def ingest() -> None:
            with adbc.connect(url) as conn, conn.cursor() as cursor:
                batches = pq.ParquetFile(files["append"]).iter_batches(ROW_GROUP)
                cursor.adbc_ingest("raw", batches, mode="create")
                conn.commit()

        return {"raw": timed(ingest), **feedline_loads(PostgresWarehouse(url), files, steps)}
    finally:
        with psycopg.connect(POSTGRES_URL, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def machine() -> str:
    import duckdb
    import psycopg
    import pyarrow

    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return (f"nproc {os.cpu_count()}, Python {platform.python_version()}, duckdb {duckdb.__version__}, "
            f"psycopg {psycopg.__version__}, pyarrow {pyarrow.__version__}; load average {load}")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=10_000_000, help="rows of the clean file")
    parser.add_argument("--backends", default="duckdb,postgres", help="comma-separated: duckdb, postgres")
    parser.add_argument("--repeat", type=int, default=1, help="runs per backend; the fastest of each is kept")
    parser.add_argument("--steps", action="store_true", help="print the slow statements of each load")
    args = parser.parse_args()
    sys.path.insert(0, str(REPO / "src"))
    print(machine(), flush=True)
    first = clean_parquet(args.rows)
    files = {
        "append": first,
        "upsert": first,
        "upsert-10%": clean_parquet(args.rows, args.rows * 9 // 10 + 1),
    }
    benches = {"duckdb": bench_duckdb, "postgres": bench_postgres}
    targets = {"append": 0.70, "upsert": 0.40, "upsert-10%": 0.40}
    for backend in args.backends.split(","):
        runs = [benches[backend](files, args.steps) for _ in range(args.repeat)]
        best = {path: min(run[path] for run in runs) for path in runs[0]}
        for path, seconds in best.items():
            rate = args.rows / seconds / 1e6
            ratio = best["raw"] / seconds
            verdict = "" if path == "raw" else f"  target >= {targets[path]:.0%}: " + (
                "met" if ratio >= targets[path] else "NOT met")  # fmt: skip
            print(f"{backend:8s} {path:10s} {seconds:7.2f} s  {rate:5.2f} M rows/s  "
                  f"feedline/raw {ratio:4.0%}{verdict}", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
