"""Burst benchmark: drop many files into a feed's landing folder at once; time until every one is loaded.

    .venv/bin/python bench/burst.py --files 1000 --rows 20 [--executor local|celery] [--big 20 --big-mb 100]
        [--parallelism 4] [--workers 2 --concurrency 2] [--warehouse-slots 1] [--max-files-per-run N]
        [--bytecode-cache] [--inline-max-bytes N] [--reuse] [--keep] [--timeout 1800]

Starts a throwaway stack (LocalExecutor on SQLite with the DuckDB warehouse, or `--executor celery`: the
CeleryExecutor with Redis, Airflow's metadata and the warehouse on PostgreSQL), or with `--reuse` drives
the stack `make run` left running. All files are written first, hidden, then renamed into the landing
folder together; the clock starts at the first rename and stops when the ledger shows every file in a
terminal state. Prints elapsed time, files/s, rows/s, the peak memory of every stack process (RSS summed
over each component's process tree, and PSS, which counts memory shared by forked processes once),
sampled every second, what the tasks spent their time on, and checks exactly-once: one ledger row per
file, all `loaded`, and the target holding exactly the expected rows of this burst's order-id range, each
once. Exits 1 if the check fails or the files are not all terminal within --timeout.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))  # support.make_project: a project folder like the repo's

ROW_BYTES = 88.4  # bytes per row of the sample orders CSV (99.9 MB for 1.13 M rows)


@dataclass
class Burst:
    """The files of one burst and what the warehouse must hold once they are loaded."""

    tag: str
    first_id: int
    paths: list[Path] = field(default_factory=list)
    rows: int = 0
    clean: int = 0
    bytes: int = 0

    @property
    def last_id(self) -> int:
        return self.first_id + self.rows


def write_files(staging: Path, tag: str, small: int, rows: int, big: int, big_mb: int) -> Burst:
    """Write the burst's files (hidden, outside the landing folder) with disjoint order-id ranges."""
    from feedline.sample import write_orders_csv

    staging.mkdir(parents=True, exist_ok=True)
    burst = Burst(tag, first_id=(int(time.time()) % 1_000_000) * 1_000_000_000)
    sizes = [("s", rows)] * small + [("b", int(big_mb * 1e6 / ROW_BYTES))] * big
    for i, (kind, count) in enumerate(sizes):
        path = staging / f"{tag}-{kind}{i:05d}.csv"
        stats = write_orders_csv(path, rows=count, seed=i, start_id=burst.first_id + burst.rows)
        burst.paths.append(path)
        burst.rows += stats.rows
        burst.clean += stats.clean
        burst.bytes += stats.bytes
    return burst


def drop(burst: Burst, landing: Path) -> float:
    """Rename every file into the landing folder; returns the monotonic time of the first rename."""
    landing.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    for path in burst.paths:
        os.replace(path, landing / path.name)
    return started


class MemorySampler(threading.Thread):
    """Peak RSS and PSS summed over every process of the stack's components, sampled every second."""

    def __init__(self, pids: dict[str, int], period: float = 1.0) -> None:
        super().__init__(daemon=True)
        self.roots, self.period = list(pids.values()), period
        self.peak_rss = self.peak_pss = self.peak_processes = 0
        self._halt = threading.Event()

    def run(self) -> None:
        import psutil

        while not self._halt.is_set():
            rss = pss = count = 0
            for proc in self._tree(psutil):
                try:
                    info = proc.memory_full_info()
                except (psutil.NoSuchProcess, psutil.AccessDenied):
                    continue
                rss, pss, count = rss + info.rss, pss + getattr(info, "pss", info.rss), count + 1
            self.peak_rss, self.peak_pss = max(self.peak_rss, rss), max(self.peak_pss, pss)
            self.peak_processes = max(self.peak_processes, count)
            self._halt.wait(self.period)

    def _tree(self, psutil: Any) -> list[Any]:
        procs: dict[int, Any] = {}
        for pid in self.roots:
            try:
                root = psutil.Process(pid)
                for proc in [root, *root.children(recursive=True)]:
                    procs[proc.pid] = proc
            except psutil.NoSuchProcess:
                continue
        return list(procs.values())

    def stop(self) -> None:
        self._halt.set()
        self.join()


def ledger_states(warehouse: str, tag: str) -> Counter[str]:
    """States of this burst's files in the ledger (read-only; a busy DuckDB file reads as no answer)."""
    from feedline.warehouse import connect_warehouse

    wh = connect_warehouse(warehouse, read_only=True, lock_timeout=2)
    try:
        d = wh.dialect
        with wh.transaction() as tx:
            tx.execute(
                f"SELECT {d.quote('state')}, COUNT(*) FROM feedline_audit.files "
                f"WHERE {d.quote('key')} LIKE {d.param} GROUP BY {d.quote('state')}",
                [f"{tag}-%"],
            )
            return Counter({str(state): int(n) for state, n in tx.fetchall()})
    finally:
        wh.close()


def verify(warehouse: str, burst: Burst) -> list[str]:
    """Exactly-once: one ledger row per file, all loaded, and the burst's rows in the target once each."""
    from feedline.warehouse import connect_warehouse

    wh = connect_warehouse(warehouse, read_only=True, lock_timeout=30)
    problems: list[str] = []
    try:
        d = wh.dialect
        with wh.transaction() as tx:
            tx.execute(
                f"SELECT {d.quote('key')}, {d.quote('state')}, {d.quote('rows_loaded')} "
                f"FROM feedline_audit.files WHERE {d.quote('key')} LIKE {d.param}",
                [f"{burst.tag}-%"],
            )
            ledger = tx.fetchall()
            tx.execute(
                "SELECT COUNT(*), COUNT(DISTINCT order_id) FROM orders "
                f"WHERE order_id >= {d.param} AND order_id < {d.param}",
                [burst.first_id, burst.last_id],
            )
            rows, distinct = tx.fetchone() or (0, 0)
    finally:
        wh.close()
    keys = Counter(str(key) for key, _, _ in ledger)
    if twice := [k for k, n in keys.items() if n > 1]:
        problems.append(f"{len(twice)} file(s) have more than one ledger row, e.g. {twice[0]}")
    if missing := len(burst.paths) - len(keys):
        problems.append(f"{missing} file(s) are not in the ledger")
    states = Counter(str(state) for _, state, _ in ledger)
    if states != Counter({"loaded": len(burst.paths)}):
        problems.append(f"ledger states {dict(states)}, expected all {len(burst.paths)} loaded")
    marked = sum(int(n or 0) for _, _, n in ledger)
    if (rows, distinct, marked) != (burst.clean, burst.clean, burst.clean):
        problems.append(
            f"target holds {rows} rows ({distinct} distinct order ids), ledger says {marked} loaded; "
            f"expected {burst.clean}"
        )
    return problems


def task_stats(stack: Any, since: datetime) -> dict[str, dict[str, float]]:
    """Per task of the feed DAG, over the task instances started since the drop: how many, the mean and total
    seconds they ran, and the mean seconds they waited for a slot (scheduled → queued: executor
    parallelism or pool slots) and for a process (queued → running: worker pick-up and start)."""
    runs = [  # a run created before the drop (the sweep's) may still be the one that takes the files
        r
        for r in _pages(stack, "dags/feed_orders/dagRuns", "dag_runs")
        if not r.get("end_date") or _when(r["end_date"]) >= since
    ]
    spent: dict[str, list[float]] = defaultdict(list)
    slot: dict[str, list[float]] = defaultdict(list)
    waited: dict[str, list[float]] = defaultdict(list)
    for run in runs:
        path = f"dags/feed_orders/dagRuns/{run['dag_run_id']}/taskInstances"
        for ti in _pages(stack, path, "task_instances"):
            if ti.get("duration") is None or _when(ti["start_date"]) < since:
                continue
            spent[ti["task_id"]].append(float(ti["duration"]))
            if ti.get("queued_when") and ti.get("start_date"):
                waited[ti["task_id"]].append(_seconds(ti["queued_when"], ti["start_date"]))
            if ti.get("scheduled_when") and ti.get("queued_when"):
                slot[ti["task_id"]].append(_seconds(ti["scheduled_when"], ti["queued_when"]))
    return {
        task: {
            "count": len(durations),
            "mean_s": statistics.fmean(durations),
            "total_s": sum(durations),
            "mean_slot_wait_s": statistics.fmean(slot[task]) if slot[task] else 0.0,
            "mean_start_wait_s": statistics.fmean(waited[task]) if waited[task] else 0.0,
            "runs": len(runs),
        }
        for task, durations in sorted(spent.items())
    }


def _pages(stack: Any, path: str, key: str) -> Iterator[dict[str, Any]]:
    offset = 0
    while True:
        body = stack.api("GET", f"{path}?limit=100&offset={offset}")
        items = body.get(key, []) if isinstance(body, dict) else []
        yield from items
        offset += len(items)
        if not items or offset >= int(body.get("total_entries", 0)):
            return


def _when(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _seconds(start: str, end: str) -> float:
    return (_when(end) - _when(start)).total_seconds()


def bench_feed(max_files_per_run: int | None) -> str:
    feed = (REPO / "feeds" / "orders.yaml").read_text()
    if max_files_per_run is not None:
        feed += f"max_files_per_run: {max_files_per_run}\n"
    return feed


@contextmanager
def running_stack(args: argparse.Namespace, workdir: Path) -> Iterator[Any]:
    """The stack to drive: `make run`'s when --reuse, else a new one, stopped (and its databases
    dropped) afterwards unless --keep."""
    from feedline.stack import Stack, free_port, project_stack
    from feedline.stack_celery import CeleryOptions
    from support import make_project

    if args.reuse:
        stack = project_stack(REPO)
        if "scheduler" not in stack.pids():
            raise SystemExit("--reuse: no running stack of this checkout; start one with `make run-detached`")
        yield stack
        return
    max_files = args.max_files_per_run or min(args.files + args.big, 1024)
    project = make_project(workdir / "project", {"orders.yaml": bench_feed(max_files)})
    # A cache of its own, kept between runs: writing .pyc files into the shared venv would also speed
    # up every later run without the option, and every other user of the venv.
    cache = {"PYTHONDONTWRITEBYTECODE": "", "PYTHONPYCACHEPREFIX": str(REPO / "bench" / "out" / "pycache")}
    env = cache if args.bytecode_cache else {}
    if args.inline_max_bytes is not None:
        env["FEEDLINE_INLINE_MAX_BYTES"] = str(args.inline_max_bytes)
    stack = Stack(
        project=project,
        home=project / ".airflow",
        port=free_port(),
        parallelism=args.parallelism,
        executor=args.executor,
        celery=CeleryOptions(workers=args.workers, concurrency=args.concurrency),
        warehouse_slots=args.warehouse_slots,
        env_extra=env,
    )
    print(f"==> starting a {args.executor} stack in {stack.home} (max_files_per_run {max_files})", flush=True)
    started = time.monotonic()
    try:
        stack.configure()
        stack.migrate()
        stack.start()
        stack.wait_healthy(timeout=600)
        _wait_parsed(stack)
        print(f"    up in {time.monotonic() - started:.0f} s", flush=True)
        yield stack
    finally:
        if args.keep:
            print(
                f"==> left running at {stack.url}; remove it with: FEEDLINE_HOME={project} "
                f"FEEDLINE_AIRFLOW_HOME={stack.home} .venv/bin/python -m feedline.stack destroy"
            )
        else:
            stack.destroy()


def _wait_parsed(stack: Any, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any(d["dag_id"] == "feed_orders" for d in stack.api("GET", "dags?tags=feedline")["dags"]):
            return
        time.sleep(2)
    raise TimeoutError(f"feed_orders not parsed after {timeout:.0f}s; see {stack.home}/logs")


def wait_terminal(warehouse: str, burst: Burst, started: float, timeout: float) -> Counter[str]:
    """Poll the ledger until every file of the burst is terminal (or `timeout`); the last states seen."""
    from feedline.ledger import TERMINAL

    terminal = {str(s) for s in TERMINAL}
    states: Counter[str] = Counter()
    last_print = 0.0
    while time.monotonic() - started < timeout:
        with suppress(Exception):  # DuckDB held by a writing task: ask again at the next poll
            states = ledger_states(warehouse, burst.tag)
        if time.monotonic() - last_print >= 15:
            print(f"    {time.monotonic() - started:6.0f} s  {dict(sorted(states.items()))}", flush=True)
            last_print = time.monotonic()
        if sum(n for state, n in states.items() if state in terminal) >= len(burst.paths):
            break
        time.sleep(2)
    return states


def run(args: argparse.Namespace, workdir: Path) -> int:
    from feedline.ledger import TERMINAL
    from feedline.settings import Settings

    with running_stack(args, workdir) as stack:
        settings = Settings.from_env(stack.env())
        landing = Path(settings.source_location("data/landing/orders"))
        tag = f"burst-{datetime.now():%Y%m%d%H%M%S}"
        burst = write_files(landing / f".{tag}", tag, args.files, args.rows, args.big, args.big_mb)
        print(
            f"==> {len(burst.paths)} files, {burst.rows:,} rows, {burst.bytes / 1e6:,.1f} MB written; "
            f"dropping them into {landing}",
            flush=True,
        )
        load_before = os.getloadavg()
        sampler = MemorySampler(stack.pids())
        sampler.start()
        since = datetime.now().astimezone()
        started = drop(burst, landing)
        shutil.rmtree(landing / f".{tag}", ignore_errors=True)
        states = wait_terminal(settings.warehouse, burst, started, args.timeout)
        elapsed = time.monotonic() - started
        sampler.stop()
        done = sum(n for state, n in states.items() if state in {str(s) for s in TERMINAL})
        report(args, stack, burst, states, done, elapsed, sampler, load_before, os.getloadavg())
        stats = print_task_stats(stack, since)
        problems = [f"{len(burst.paths) - done} file(s) not terminal after {args.timeout:.0f} s"]
        if done == len(burst.paths):
            problems = verify(settings.warehouse, burst)
        for problem in problems:
            print(f"FAILED: {problem}")
        if not problems:
            print(f"exactly-once: {len(burst.paths)} ledger rows, all loaded; {burst.clean:,} rows once each")
        if args.json:
            figures = {"elapsed_s": elapsed, "files": len(burst.paths), "terminal": done, "states": states}
            Path(args.json).write_text(
                json.dumps({**figures, "tasks": stats, "problems": problems}, indent=2, default=str)
            )
        return 1 if problems else 0


def print_task_stats(stack: Any, since: datetime) -> dict[str, dict[str, float]]:
    try:
        stats = task_stats(stack, since)
    except Exception as exc:  # the figures above stand without the breakdown
        print(f"task breakdown unavailable: {exc}")
        return {}
    for task, figures in stats.items():
        print(
            f"  {task:<22} {figures['count']:>5} TIs  mean {figures['mean_s']:6.2f} s  "
            f"total {figures['total_s']:7.0f} s  waits: slot {figures['mean_slot_wait_s']:6.1f} s, "
            f"start {figures['mean_start_wait_s']:5.1f} s"
        )
    return stats


def report(
    args: argparse.Namespace,
    stack: Any,
    burst: Burst,
    states: Counter[str],
    done: int,
    elapsed: float,
    sampler: MemorySampler,
    load_before: tuple[float, float, float],
    load_after: tuple[float, float, float],
) -> None:
    files = len(burst.paths)
    print(f"==> {done}/{files} files terminal in {elapsed:.1f} s: {dict(sorted(states.items()))}")
    print(
        f"executor {stack.executor.value}, parallelism {stack.parallelism}, "
        f"warehouse pool slots {stack.warehouse_slots}"
        + (
            f", {stack.celery.workers} workers x {stack.celery.concurrency}"
            if stack.executor.value == "celery"
            else ""
        )
        + f"; nproc {os.cpu_count()}, load average {load_before[0]:.1f} before, {load_after[0]:.1f} after"
    )
    rows = f"{burst.clean / elapsed:,.0f} rows/s" if done == files else "rows/s n/a (not all loaded)"
    print(
        f"elapsed {elapsed:.1f} s | {done / elapsed:.2f} files/s | {rows} "
        f"({burst.clean:,} clean rows of {burst.rows:,}, {burst.bytes / 1e6:,.1f} MB) | "
        f"peak RSS {sampler.peak_rss / 2**20:,.0f} MiB, PSS {sampler.peak_pss / 2**20:,.0f} MiB "
        f"over {sampler.peak_processes} processes"
    )


def main(argv: list[str] | None = None) -> int:
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # unwind, so the scratch stack is stopped
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", type=int, default=1000, help="small files")
    parser.add_argument("--rows", type=int, default=20, help="rows per small file")
    parser.add_argument("--big", type=int, default=0, help="big files")
    parser.add_argument("--big-mb", type=int, default=100, help="size of each big file")
    parser.add_argument("--executor", choices=("local", "celery"), default="local")
    parser.add_argument("--parallelism", type=int, default=4, help="[core] parallelism")
    parser.add_argument("--workers", type=int, default=2, help="Celery workers")
    parser.add_argument("--concurrency", type=int, default=2, help="task slots per Celery worker")
    parser.add_argument("--warehouse-slots", type=int, default=1, help="slots of the feedline_warehouse pool")
    parser.add_argument(
        "--max-files-per-run", type=int, help="the feed's max_files_per_run (default: the burst, ≤ 1024)"
    )
    parser.add_argument(
        "--bytecode-cache",
        action="store_true",
        help="let the stack's processes cache compiled bytecode (in bench/out/pycache)",
    )
    parser.add_argument(
        "--inline-max-bytes",
        type=int,
        help="FEEDLINE_INLINE_MAX_BYTES: files this small load in discover (default: the stack's; 0: off)",
    )
    parser.add_argument("--reuse", action="store_true", help="drive the running `make run` stack")
    parser.add_argument("--keep", action="store_true", help="leave the started stack running")
    parser.add_argument("--timeout", type=float, default=1800)
    parser.add_argument("--json", help="also write the task breakdown to this file")
    args = parser.parse_args(argv)
    if args.keep:
        return run(args, Path(tempfile.mkdtemp(prefix="feedline-burst-")))
    with tempfile.TemporaryDirectory(prefix="feedline-burst-") as tmp:
        return run(args, Path(tmp))


if __name__ == "__main__":
    sys.exit(main())
