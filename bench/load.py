"""Benchmark feedline's exactly-once load against each engine's raw bulk path, on DuckDB and PostgreSQL.

    .venv/bin/python bench/load.py [--rows 10000000] [--backends duckdb,postgres] [--repeat 1] [--steps]
                                   [--pg-server shared|stock|tuned] [--pg-set name=value ...] [--no-analyze]
                                   [--no-delete-guard] [--index-key]

Three clean Parquet files typed like the orders contract's transform output are generated once (cached
in bench/out/): ids 1..N, ids from 0.9 N + 1 (a tenth overlap), and 1,000 rows from N - 499 (half
overlap). Raw paths: DuckDB `CREATE TABLE AS SELECT * FROM read_parquet`; PostgreSQL ADBC ingest into a
fresh table (DESIGN §6's fastest measured path). feedline: `Warehouse.load` (checks, publish, ledger
mark, one transaction): append into an empty table; upsert of the same file again (every key replaced:
the worst case); upsert of the second file (a tenth of its keys replaced, the rest new); then the small
file into the table of 1.9 N rows, where the cost is finding the rows it replaces (`--index-key`: the
feed's target.index_key). PostgreSQL runs in a fresh database, dropped afterwards:
on the machine's server (`--pg-server shared`, BENCH_POSTGRES_URL), or on a private PostgreSQL 15 cluster
initdb'ed for the run into a temporary directory and removed afterwards, with initdb's stock settings
(`stock`) or with settings a warehouse uses for bulk loads (`tuned`); `--pg-set` overrides one setting of
the private cluster. Durability stays on (fsync, synchronous_commit, full_page_writes). Each PostgreSQL
load finds its target ANALYZEd (untimed), as autovacuum leaves a table soon after a large load: the
statistics change the upsert's plan (`--no-analyze` loads into a table without statistics).
"""

from __future__ import annotations

import argparse
import os
import platform
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
OUT = HERE / "out"
ORDERS = REPO / "feeds" / "orders.yaml"
ORDERS_TABLE = "public.orders"  # orders.yaml's target
POSTGRES_URL = os.environ.get("BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
CHUNK = 1_000_000
SMALL = 1_000  # rows of the small upsert into the large table
ROW_GROUP = 65_536
PG_BIN = Path(os.environ.get("BENCH_PG_BIN", "/usr/lib/postgresql/15/bin"))
# A warehouse tuned for bulk loads: the table being rewritten stays in shared buffers, and checkpoints
# (each one makes the next write of every page log a full-page image) come rarely.
TUNED = {
    "shared_buffers": "2GB",
    "max_wal_size": "8GB",
    "checkpoint_timeout": "30min",
    "wal_compression": "lz4",
    "maintenance_work_mem": "512MB",
}
SHOWN = ("shared_buffers", "max_wal_size", "checkpoint_timeout", "wal_compression", "wal_buffers",
         "maintenance_work_mem", "work_mem", "fsync", "synchronous_commit", "full_page_writes")  # fmt: skip


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


def feedline_loads(
    warehouse: Any,
    files: dict[str, Path],
    steps: bool,
    observe: Callable[[], AbstractContextManager[Any]] = nullcontext,
    prepare: Callable[[], None] | None = None,
    index_key: bool = False,
) -> dict[str, float]:
    """Seconds of each feedline load, in order: `append` into an empty table; `upsert` of the same file
    again (every key replaced); `upsert-10%` of a file whose first tenth of keys exist (the rest new);
    `upsert-small`, SMALL rows of which half replace rows of the table, the table then holding 1.9 times
    the rows. Each load runs inside `observe()` (the server's WAL counters, with --steps), after
    `prepare()` (not timed: PostgreSQL's ANALYZE of the target); `index_key` sets the feed's
    target.index_key."""
    from feedline.contract import LoadMode, load_feed
    from feedline.ledger import Ledger
    from feedline.storage.base import ObjectInfo

    results = {}
    ledger = Ledger(warehouse)
    ledger.ensure()
    for n, (name, parquet) in enumerate(files.items()):
        mode = LoadMode(name.split("-")[0])
        feed = load_feed(ORDERS)
        target = feed.target.model_copy(update={"mode": mode, "index_key": index_key})
        feed = feed.model_copy(update={"target": target})
        file_id = ledger.register(feed.name, [ObjectInfo(f"bench-{n}.csv", n, 0.0, f"x:{n}")]).new[0].file_id
        warehouse.ensure_table(feed)
        if prepare is not None:
            prepare()
        if steps:
            print(f"    {name}:", flush=True)
        with statement_timings(steps), observe():
            results[name] = timed(lambda f=feed, i=file_id, p=parquet: warehouse.load(  # type: ignore[misc]
                f, i, p, rows_in=0, rows_rejected=0, duplicates=0, clean_uri=str(p), rejected_uri="",
            ))  # fmt: skip
    return results


def bench_duckdb(files: dict[str, Path], steps: bool, index_key: bool = False) -> dict[str, float]:
    import duckdb

    from feedline.warehouse.duckdb import DuckDBWarehouse

    with tempfile.TemporaryDirectory(prefix="bench-load-", dir=OUT) as tmp:
        raw = duckdb.connect(str(Path(tmp) / "raw.duckdb"))
        sql = "CREATE TABLE raw AS SELECT * FROM read_parquet(?)"
        took = timed(lambda: raw.execute(sql, [str(files["append"])]))
        raw.close()
        warehouse = DuckDBWarehouse(Path(tmp) / "w.duckdb")
        return {"raw": took, **feedline_loads(warehouse, files, steps, index_key=index_key)}


def bench_postgres(
    files: dict[str, Path], steps: bool, server: str, analyze: bool, index_key: bool = False
) -> dict[str, float]:
    """ADBC ingest, then feedline's loads in a fresh database of `server`; with `analyze`, each load finds
    the target ANALYZEd, as autovacuum leaves a table within a minute of a large load (the statistics
    change the upsert's plan)."""
    import adbc_driver_postgresql.dbapi as adbc
    import psycopg
    import pyarrow.parquet as pq

    from feedline.warehouse.postgres import PostgresWarehouse

    name = f"feedline_bench_{uuid.uuid4().hex[:12]}"
    url = f"{server.rpartition('/')[0]}/{name}"
    with psycopg.connect(server, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:

        def ingest() -> None:
            with adbc.connect(url) as conn, conn.cursor() as cursor:
                batches = pq.ParquetFile(files["append"]).iter_batches(ROW_GROUP)
                cursor.adbc_ingest("raw", batches, mode="create")
                conn.commit()

        observe = (lambda: wal_written(server)) if steps else nullcontext
        with observe():
            raw = timed(ingest)
        if steps:
            print(f"    raw: {raw:.2f}s", flush=True)

        def prepare() -> None:
            with psycopg.connect(url, autocommit=True) as conn:
                took = timed(lambda: conn.execute(f"ANALYZE {ORDERS_TABLE}"))
            if steps:
                print(f"    (ANALYZE {ORDERS_TABLE}: {took:.2f}s, not counted)", flush=True)

        loads = feedline_loads(
            PostgresWarehouse(url), files, steps, observe, prepare if analyze else None, index_key
        )
        return {"raw": raw, **loads}
    finally:
        with psycopg.connect(server, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


WAL_COUNTERS = (
    "SELECT w.wal_bytes, w.wal_fpi, w.wal_sync, b.checkpoints_timed + b.checkpoints_req, b.buffers_backend "
    "FROM pg_stat_wal w, pg_stat_bgwriter b"
)


@contextmanager
def wal_written(server: str) -> Iterator[None]:
    """Print the WAL the server wrote during the block, its full-page images, WAL syncs, checkpoints and
    buffers the backends had to write themselves, and the CPU seconds of the server's processes and of
    this one (server-wide: exact only on a private cluster; CPU time, unlike wall time, barely moves with
    the machine's load)."""
    import psycopg

    def counters() -> tuple[float, ...]:
        with psycopg.connect(server, autocommit=True) as conn:
            row = conn.execute(WAL_COUNTERS).fetchone()
            home = conn.execute("SHOW data_directory").fetchone()
        assert row is not None and home is not None
        return (*(int(v) for v in row), cluster_cpu(Path(home[0])), time.process_time())

    before = counters()
    yield
    wal, fpi, syncs, checkpoints, backend, server_cpu, client_cpu = (
        a - b for a, b in zip(counters(), before, strict=True)
    )
    print(f"      WAL {wal / 1e9:.2f} GB, {fpi:.0f} full-page images, {syncs:.0f} WAL syncs, "
          f"{checkpoints:.0f} checkpoint(s), {backend:.0f} buffers written by backends; CPU: server "
          f"{server_cpu:.1f} s, client {client_cpu:.1f} s", flush=True)  # fmt: skip


def cluster_cpu(data_directory: Path) -> float:
    """CPU seconds used so far by a local cluster: its postmaster, the children it reaped and those alive,
    once an exited backend (its time not yet passed to the postmaster) has been reaped; NaN when the
    processes cannot be read."""
    tick = os.sysconf("SC_CLK_TCK")
    try:
        postmaster = int((data_directory / "postmaster.pid").read_text().split()[0])
        for _ in range(100):
            children = [f for f in map(_stat, Path("/proc").iterdir()) if f and f[1] == postmaster]
            if not any(f[0] == "Z" for f in children):
                break
            time.sleep(0.02)
        own = _stat(Path(f"/proc/{postmaster}"))
        assert own is not None
    except (OSError, ValueError, IndexError, AssertionError):
        return float("nan")
    return (sum(own[11:15]) + sum(f[11] + f[12] for f in children)) / tick


def _stat(proc: Path) -> list[Any] | None:
    """/proc/<pid>/stat's fields after the command name: state, then numbers (None if not a process)."""
    if not proc.name.isdigit():
        return None
    try:
        fields = (proc / "stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return [fields[0], *(int(f) for f in fields[1:])]


def server_settings(server: str) -> str:
    """The server's version and the settings that matter to bulk loads, for the report."""
    import psycopg

    with psycopg.connect(server, autocommit=True) as conn:
        version = conn.execute("SHOW server_version").fetchone()
        values = [f"{n} {conn.execute(f'SHOW {n}').fetchone()[0]}" for n in SHOWN]  # type: ignore[index]
    return f"PostgreSQL {version[0] if version else '?'}: {', '.join(values)}"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def private_postgres(settings: dict[str, str]) -> Iterator[str]:
    """A throwaway PostgreSQL cluster (initdb into a temporary directory, started on a free port of
    127.0.0.1, its unix socket in that directory) with `settings`; yields a superuser URL. Stopped and
    removed on exit, also on Ctrl-C or SIGTERM. initdb refuses root, so as root it runs as `postgres`."""
    user = "postgres" if os.geteuid() == 0 else None
    home = Path(tempfile.mkdtemp(prefix="feedline-bench-pg-"))
    data, port = home / "data", free_port()

    def pg(*args: str, check: bool = True) -> subprocess.CompletedProcess[bytes]:
        return subprocess.run([str(PG_BIN / args[0]), *args[1:]], check=check, user=user, capture_output=True)

    try:
        try:
            if user is not None:
                entry = pwd.getpwnam(user)
                os.chown(home, entry.pw_uid, entry.pw_gid)
            pg("initdb", "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--locale=C.UTF-8")
            own = {"port": str(port), "listen_addresses": "127.0.0.1", "unix_socket_directories": str(home)}
            lines = [f"{k} = '{v}'" for k, v in {**settings, **own}.items()]
            with (data / "postgresql.conf").open("a") as conf:
                conf.write("\n# bench/load.py\n" + "\n".join(lines) + "\n")
            pg("pg_ctl", "start", "-D", str(data), "-w", "-t", "120", "-l", str(home / "server.log"))
        except subprocess.CalledProcessError as exc:
            log = home / "server.log"
            tail = log.read_text()[-2000:] if log.exists() else ""
            raise SystemExit(
                f"private PostgreSQL cluster: {exc.cmd[0]} failed: {exc.stderr.decode()}{tail}"
            ) from exc
        yield f"postgresql://postgres@127.0.0.1:{port}/postgres"
    finally:
        if (data / "postmaster.pid").exists():
            stop = pg("pg_ctl", "stop", "-D", str(data), "-m", "fast", "-w", "-t", "60", check=False)
            if stop.returncode != 0:
                pg("pg_ctl", "stop", "-D", str(data), "-m", "immediate", check=False)
        shutil.rmtree(home, ignore_errors=True)


def machine() -> str:
    import duckdb
    import psycopg
    import pyarrow

    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return (f"nproc {os.cpu_count()}, Python {platform.python_version()}, duckdb {duckdb.__version__}, "
            f"psycopg {psycopg.__version__}, pyarrow {pyarrow.__version__}; load average {load}")  # fmt: skip


def pg_settings(server: str, overrides: list[str]) -> dict[str, str] | None:
    """The private cluster's settings for `--pg-server` (None: the shared server), with `--pg-set`s."""
    if server == "shared":
        if overrides:
            raise SystemExit("--pg-set applies to a private cluster: add --pg-server stock or tuned")
        return None
    settings = dict(TUNED) if server == "tuned" else {}
    for item in overrides:
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise SystemExit(f"--pg-set {item!r}: use name=value, e.g. --pg-set shared_buffers=1GB")
        settings[name.strip()] = value.strip()
    return settings


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=10_000_000, help="rows of the clean file")
    parser.add_argument("--backends", default="duckdb,postgres", help="comma-separated: duckdb, postgres")
    parser.add_argument("--repeat", type=int, default=1, help="runs per backend; the fastest of each is kept")
    parser.add_argument("--steps", action="store_true", help="print the slow statements of each load")
    parser.add_argument("--pg-server", choices=("shared", "stock", "tuned"), default="shared",
                        help="PostgreSQL: the machine's server (BENCH_POSTGRES_URL), or a private cluster "
                        "with initdb's settings or tuned for bulk loads")  # fmt: skip
    parser.add_argument("--no-analyze", action="store_true",
                        help="PostgreSQL: do not ANALYZE the target before each load")  # fmt: skip
    parser.add_argument("--pg-set", action="append", default=[], metavar="NAME=VALUE",
                        help="a setting of the private cluster (repeatable)")  # fmt: skip
    parser.add_argument("--index-key", action="store_true",
                        help="the feed's target.index_key (PostgreSQL indexes the key)")  # fmt: skip
    parser.add_argument("--no-delete-guard", action="store_true",
                        help="PostgreSQL: the planner picks the upsert DELETE's join")  # fmt: skip
    args = parser.parse_args()
    sys.path.insert(0, str(REPO / "src"))
    if args.no_delete_guard:
        from feedline.warehouse.postgres import PostgresDialect

        PostgresDialect.guards_delete_join = False
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # unwind: the private cluster is removed
    settings = pg_settings(args.pg_server, args.pg_set)
    print(machine(), flush=True)
    first = clean_parquet(args.rows)
    files = {
        "append": first,
        "upsert": first,
        "upsert-10%": clean_parquet(args.rows, args.rows * 9 // 10 + 1),
        "upsert-small": clean_parquet(SMALL, args.rows - SMALL // 2 + 1),
    }
    backends = args.backends.split(",")
    private = settings is not None and "postgres" in backends
    where = f"private {args.pg_server} cluster" if private else f"shared server {POSTGRES_URL}"
    with private_postgres(settings or {}) if private else nullcontext(POSTGRES_URL) as server:
        if "postgres" in backends:
            print(f"postgres: {where}; {server_settings(server)}", flush=True)
        benches = {
            "duckdb": lambda f, s: bench_duckdb(f, s, args.index_key),
            "postgres": lambda f, s: bench_postgres(f, s, server, not args.no_analyze, args.index_key),
        }
        for backend in backends:
            runs = [benches[backend](files, args.steps) for _ in range(args.repeat)]
            report(backend, runs, args.rows)


def report(backend: str, runs: list[dict[str, float]], rows: int) -> None:
    """The fastest of the runs for each path, its rate and its ratio to the raw path against the target."""
    targets = {"append": 0.70, "upsert": 0.40, "upsert-10%": 0.40}
    best = {path: min(run[path] for run in runs) for path in runs[0]}
    for path, seconds in best.items():
        if path == "upsert-small":
            print(f"{backend:8s} {path:10s} {seconds * 1000:7.0f} ms  {SMALL} rows into a table of "
                  f"{rows * 1.9 / 1e6:.1f} M rows", flush=True)  # fmt: skip
            continue
        rate = rows / seconds / 1e6
        ratio = best["raw"] / seconds
        verdict = "" if path == "raw" else f"  target >= {targets[path]:.0%}: " + (
            "met" if ratio >= targets[path] else "NOT met")  # fmt: skip
        print(f"{backend:8s} {path:10s} {seconds:7.2f} s  {rate:5.2f} M rows/s  "
              f"feedline/raw {ratio:4.0%}{verdict}", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
