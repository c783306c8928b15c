"""Latency from landing to queryable on the local Airflow stack, per file and per stage.

    .venv/bin/python bench/latency.py [--files 60] [--gap 1:9] [--rows 100] [--label default]
    .venv/bin/python bench/latency.py --burst 40 --label burst      # throughput: 40 files at once
    .venv/bin/python bench/latency.py --attach                      # a stack `make run-detached` left up
    .venv/bin/python bench/latency.py --cfg scheduler.scheduler_idle_sleep_time=1 \\
        --feed source.settle_seconds=2 --env FEEDLINE_METRICS=none --label lever   # one lever at a time

Starts the stack `make run` starts (`feedline.stack.Stack`: the same airflow.cfg, parallelism 4, the
repo's dags/ and feeds/orders.yaml) in a scratch project under bench/out/latency/, warms it with a few
files, waits until it is idle, then drops small order files one by one at random intervals. Each file is
written aside and renamed into data/landing/orders/ — atomically, so no reader ever sees it partial; its
mtime is the landed time. Per file, from the ledger (feedline_audit.files), the Airflow REST API and a
poller reading the warehouse every 0.25 s:

    landed (mtime) → event (the asset watcher's event naming the file) → run queued (the DAG run that
    registered it) → detected (ledger detected_at) → transformed (end of its transform task, if a separate
    task) → loaded (ledger loaded_at, same transaction as the rows) → queryable (the poller sees its rows)

prints p50 / p95 / max of each stage and of landed → queryable, the load average while measuring, and the
CPU seconds the stack's processes used. Results go to bench/out/latency/<label>.json (bench/plots.py
draws them).
"""

from __future__ import annotations

import argparse
import configparser
import itertools
import json
import os
import platform
import random
import shutil
import signal
import statistics
import sys
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
OUT = HERE / "out" / "latency"
FEED = "orders"
DAG_ID = "feed_orders"
TARGETS = {"p50": 5.0, "p95": 10.0}
POINTS = ("landed", "event", "run_queued", "detected", "transformed", "loaded", "queryable")
LABELS = {"run_queued": "run queued"}


def stages(record: Any) -> dict[str, float]:
    """{"a → b": seconds} between consecutive points of one file's path that were observed (a file
    loaded inline has no separate transformed point: its stage is detected → loaded)."""
    seen = [(p, getattr(record, p) if not isinstance(record, dict) else record.get(p)) for p in POINTS]
    present = [(p, t) for p, t in seen if t is not None]
    return {
        f"{LABELS.get(a, a)} → {LABELS.get(b, b)}": tb - ta
        for (a, ta), (b, tb) in itertools.pairwise(present)
    }


sys.path.insert(0, str(REPO / "src"))

from feedline.stack import Stack, free_port  # noqa: E402

# --- the stack --------------------------------------------------------------------------------------


def parse_assignments(items: list[str], what: str) -> dict[str, str]:
    """`name=value` pairs from the command line."""
    pairs: dict[str, str] = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise SystemExit(f"{what} {item!r}: use name=value")
        pairs[name.strip()] = value.strip()
    return pairs


def make_project(root: Path, feed_overrides: dict[str, str]) -> Path:
    """A scratch project like the repo's: dags/ copied, feeds/orders.yaml with `feed_overrides` applied."""
    import yaml

    if root.exists():
        shutil.rmtree(root)
    shutil.copytree(REPO / "dags", root / "dags", ignore=shutil.ignore_patterns("__pycache__"))
    (root / "feeds").mkdir(parents=True)
    text = (REPO / "feeds" / f"{FEED}.yaml").read_text()
    if feed_overrides:
        spec = yaml.safe_load(text)
        for dotted, raw in feed_overrides.items():
            *parents, leaf = dotted.split(".")
            node = spec
            for name in parents:
                node = node.setdefault(name, {})
            node[leaf] = yaml.safe_load(raw)
        text = yaml.safe_dump(spec, sort_keys=False)
    (root / "feeds" / f"{FEED}.yaml").write_text(text)
    return root


def patch_config(stack: Stack, overrides: dict[str, str]) -> None:
    """Set `section.option=value`s in the airflow.cfg `Stack.configure` wrote."""
    if not overrides:
        return
    path = stack.home / "airflow.cfg"
    config = configparser.ConfigParser(interpolation=None)
    config.read(path)
    for dotted, value in overrides.items():
        section, _, option = dotted.partition(".")
        if not option:
            raise SystemExit(f"--cfg {dotted!r}: use section.option=value")
        if not config.has_section(section):
            config.add_section(section)
        config.set(section, option, value)
    with path.open("w") as out:
        config.write(out)


PROFILE_HOOK = """
if sys.argv[1:2] == ["scheduler"]:
    import cProfile

    _scheduler = os.getpid()

    def _profile_task() -> None:  # in every process forked by the scheduler or by its workers
        if os.getppid() == _scheduler:
            return  # a LocalExecutor worker: only the task processes it forks are profiled
        profile, real_exit = cProfile.Profile(), os._exit

        def _exit(code: int) -> None:  # a task process ends with os._exit
            profile.disable()
            profile.dump_stats(os.path.join({folder!r}, f"task-{{os.getpid()}}.prof"))
            real_exit(code)

        os._exit = _exit
        profile.enable()

    os.register_at_fork(after_in_child=_profile_task)
"""


def write_local_settings(stack: Stack, modules: str | None, profile_dir: Path | None = None) -> None:
    """Rewrite the stack's airflow_local_settings.py: the scheduler preloads `modules` (comma-separated;
    '' for none; None: the stack's default, `TASK_LIBRARIES`) before it forks its workers, and, with
    `profile_dir`, every task process is profiled (cProfile, one file per process)."""
    from feedline.stack import PRELOAD_SETTINGS, TASK_LIBRARIES

    names = TASK_LIBRARIES if modules is None else tuple(m.strip() for m in modules.split(",") if m.strip())
    body = PRELOAD_SETTINGS.format(modules=names)
    if profile_dir is not None:
        shutil.rmtree(profile_dir, ignore_errors=True)
        profile_dir.mkdir(parents=True)
        body += PROFILE_HOOK.format(folder=str(profile_dir))
    (stack.home / "config").mkdir(parents=True, exist_ok=True)
    (stack.home / "config" / "airflow_local_settings.py").write_text(body)


def print_profile(folder: Path, top: int = 30) -> None:
    """The task processes' profiles added up: where a task's CPU time goes, by cumulative time."""
    import pstats

    files = sorted(folder.glob("task-*.prof"))
    if not files:
        print(f"no task profile in {folder}")
        return
    stats = pstats.Stats(str(files[0]))
    for path in files[1:]:
        stats.add(str(path))
    stats.dump_stats(str(folder / "all.prof"))
    print(f"\n{len(files)} task processes profiled ({folder / 'all.prof'}); top {top} by cumulative time:")
    stats.sort_stats("cumulative").print_stats(top)


class Api:
    """The stack's REST API with one token (Stack.api asks for a new token on every call)."""

    def __init__(self, stack: Stack) -> None:
        self.stack = stack
        self._token = stack.token()

    def get(self, path: str, **params: Any) -> Any:
        query = urllib.parse.urlencode(params, doseq=True)
        request = urllib.request.Request(
            f"{self.stack.url}/api/v2/{path}{'?' + query if query else ''}",
            headers={"Authorization": f"Bearer {self._token}"},
        )
        with urllib.request.urlopen(request, timeout=30) as resp:
            return json.loads(resp.read())

    def pages(self, path: str, key: str, **params: Any) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        while True:
            body = self.get(path, limit=100, offset=len(items), **params)
            items += body[key]
            if not body[key] or len(items) >= body.get("total_entries", 0):
                return items

    def active_runs(self) -> int:
        body = self.get(f"dags/{DAG_ID}/dagRuns", state=["queued", "running"], limit=1)
        return int(body["total_entries"])


@contextmanager
def running_stack(args: argparse.Namespace) -> Iterator[Stack]:
    """The stack to measure: a fresh one in a scratch project (stopped afterwards), or `--attach`."""
    if args.attach:
        from feedline.stack import project_stack

        stack = project_stack(REPO)
        if not stack.pids():
            raise SystemExit("--attach: no stack is running here; start one with `make run-detached`")
        yield stack
        return
    project = make_project(OUT / args.label / "project", parse_assignments(args.feed, "--feed"))
    stack = Stack(
        project=project,
        home=project / ".airflow",
        port=free_port(),
        parallelism=args.parallelism,
        env_extra=parse_assignments(args.env, "--env"),
    )
    started = time.monotonic()
    stack.configure()
    patch_config(stack, parse_assignments(args.cfg, "--cfg"))
    if args.preload is not None or args.profile_tasks:
        profile = OUT / args.label / "profiles" if args.profile_tasks else None
        write_local_settings(stack, args.preload, profile)
    stack.migrate()
    try:  # a stack interrupted while it starts is stopped too
        stack.start()
        stack.wait_healthy(timeout=600)
        print(f"stack healthy after {time.monotonic() - started:.0f}s ({stack.url}, {project})", flush=True)
        yield stack
    finally:
        if args.keep:
            print(f"stack left running: FEEDLINE_HOME={project} .venv/bin/python -m feedline.stack stop")
        else:
            stack.stop()


def landing(stack: Stack) -> Path:
    folder = stack.project / "data" / "landing" / FEED
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def drop(folder: Path, name: str, rows: int, seed: int, start_id: int) -> float:
    """Write an orders file aside and rename it into the landing folder; its mtime (the landed time)."""
    from feedline.sample import write_orders_csv

    partial = folder / f".{name}.part"
    write_orders_csv(partial, rows=rows, seed=seed, start_id=start_id)
    os.replace(partial, folder / name)
    return os.stat(folder / name).st_mtime


# --- observing the warehouse and the machine -----------------------------------------------------------


class Poller(threading.Thread):
    """Reads the warehouse every `interval`: when each file's ledger entry and rows first became visible.

    Each read opens DuckDB read-only for a few milliseconds; a writer holding the lock makes it skip a
    tick (and a writer arriving meanwhile waits that long: the interference is this small).
    """

    def __init__(self, warehouse: Path, interval: float = 0.25) -> None:
        super().__init__(daemon=True)
        self.warehouse, self.interval = warehouse, interval
        self.ledger: dict[str, dict[str, Any]] = {}  # key -> last ledger row seen
        self.queryable: dict[str, float] = {}  # file_id -> first time its rows were seen
        self.load: list[tuple[float, float]] = []  # (time, 1-min load average)
        self.misses = 0
        self._stop_event = threading.Event()

    def run(self) -> None:
        while not self._stop_event.is_set():
            self.tick()
            self._stop_event.wait(self.interval)

    def tick(self) -> None:
        import duckdb

        now = time.time()
        self.load.append((now, os.getloadavg()[0]))
        try:
            with duckdb.connect(str(self.warehouse), read_only=True) as con:
                seen = con.execute(
                    f"SELECT DISTINCT _feedline_file_id FROM {FEED} WHERE _feedline_file_id IS NOT NULL"
                ).fetchall()
                rows = con.execute(
                    "SELECT file_id, key, state, epoch(detected_at), epoch(loaded_at) "
                    "FROM feedline_audit.files WHERE feed = ?",
                    [FEED],
                ).fetchall()
        except (duckdb.Error, OSError):
            self.misses += 1
            return
        for (file_id,) in seen:
            self.queryable.setdefault(file_id, now)
        for file_id, key, state, detected, loaded in rows:
            self.ledger[key] = {"file_id": file_id, "state": state, "detected": detected, "loaded": loaded}

    def stop(self) -> None:
        self._stop_event.set()
        self.join(timeout=5)


def component_cpu(stack: Stack) -> dict[str, float]:
    """CPU seconds (user + system) of each component's process tree, reaped children included; the
    scheduler's tree is split into the scheduler, its LocalExecutor `workers` (each supervises the task
    processes it forks) and the `tasks` themselves."""
    import psutil

    totals: dict[str, float] = {}
    for name, pid in stack.pids().items():
        try:
            root = psutil.Process(pid)
            procs = [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            continue
        for proc in procs:
            try:
                t, title = proc.cpu_times(), " ".join(proc.cmdline())
            except psutil.Error:
                continue
            own, reaped = t.user + t.system, t.children_user + t.children_system
            if name == "scheduler" and "LocalExecutor" in title:
                totals["workers"] = totals.get("workers", 0.0) + own
                totals["tasks"] = totals.get("tasks", 0.0) + reaped
            elif name == "scheduler" and "airflow worker --" in title:
                totals["tasks"] = totals.get("tasks", 0.0) + own + reaped
            else:
                totals[name] = totals.get(name, 0.0) + own + reaped
    return totals


def machine() -> dict[str, Any]:
    import duckdb
    import polars

    return {
        "nproc": os.cpu_count(),
        "python": platform.python_version(),
        "airflow": _version("apache-airflow"),
        "polars": polars.__version__,
        "duckdb": duckdb.__version__,
        "load_average": [round(x, 2) for x in os.getloadavg()],
    }


def _version(dist: str) -> str:
    from importlib.metadata import version

    return version(dist)


# --- the measurement -----------------------------------------------------------------------------------


@dataclass
class FileRecord:
    key: str
    landed: float
    event: float | None = None
    run_queued: float | None = None
    run_id: str | None = None
    detected: float | None = None
    transformed: float | None = None
    loaded: float | None = None
    queryable: float | None = None
    state: str | None = None
    tasks: dict[str, float] = field(default_factory=dict)  # task id -> seconds, for this file's run

    @property
    def latency(self) -> float | None:
        return None if self.queryable is None else self.queryable - self.landed


def wait_until(condition: Any, timeout: float, what: str, poll: float = 1.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(poll)
    raise SystemExit(f"timed out after {timeout:.0f}s waiting for {what}")


def all_loaded(poller: Poller, keys: list[str]) -> bool:
    ledger = poller.ledger
    return all(
        k in ledger and ledger[k]["state"] in ("loaded", "quarantined", "failed")
        and (ledger[k]["state"] != "loaded" or ledger[k]["file_id"] in poller.queryable)
        for k in keys
    )  # fmt: skip


def warm_up(stack: Stack, api: Api, poller: Poller, count: int, rows: int) -> None:
    """Parse, unpause, load `count` files end to end, then wait until no run is active."""
    wait_until(lambda: bool(api.get("dags", tags="feedline")["dags"]), 300, "the feed DAG to be parsed")
    folder = landing(stack)
    keys = [f"warmup_{i}.csv" for i in range(count)]
    for i, key in enumerate(keys):
        drop(folder, key, rows, seed=900 + i, start_id=9_000_000 + i * 10_000)
        time.sleep(1)
    wait_until(lambda: all_loaded(poller, keys), 600, "the warm-up files to load")
    wait_until(lambda: api.active_runs() == 0, 300, "the warm-up runs to finish")
    time.sleep(3)


def drop_files(stack: Stack, args: argparse.Namespace) -> dict[str, float]:
    """Drop the measured files: one by one at random gaps, or `--burst` at once; {key: landed}."""
    rng = random.Random(args.seed)
    low, _, high = args.gap.partition(":")
    folder = landing(stack)
    landed: dict[str, float] = {}
    count = args.burst or args.files
    for i in range(count):
        if not args.burst and i:
            time.sleep(rng.uniform(float(low), float(high or low)))
        key = f"{args.label}_{i:04d}.csv"
        landed[key] = drop(folder, key, args.rows, seed=args.seed * 1000 + i, start_id=1 + i * 10_000)
    return landed


def iso(value: str | None) -> float | None:
    return None if not value else datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


def collect(api: Api, records: dict[str, FileRecord], since: float) -> tuple[int, list[dict[str, Any]]]:
    """Fill each file's event, run and task times from the Airflow REST API; return how many task
    processes ran since `since`, and the runs (id, queued, start and end times).

    A file's run is the one whose per-file task (mapped, labelled with the file's key) ended as the
    ledger marked it loaded, or, for a file loaded inline, whose discover task ran when it was marked
    loaded; its event is the first watcher event naming it.
    """
    stamp = datetime.fromtimestamp(since - 60).astimezone().isoformat()
    for event in api.pages("assets/events", "asset_events", timestamp_gte=stamp, order_by="timestamp"):
        payload = (event.get("extra") or {}).get("payload") or {}
        at = iso(event["timestamp"])
        for key in payload.get("keys") or ():
            record = records.get(key)
            if record and at and at >= record.landed - 1 and record.event is None:
                record.event = at
    processes, runs = 0, []
    for run in api.pages(f"dags/{DAG_ID}/dagRuns", "dag_runs", run_after_gte=stamp):
        runs.append(
            {k: iso(run[k]) for k in ("queued_at", "start_date", "end_date")} | {"id": run["dag_run_id"]}
        )
        path = f"dags/{DAG_ID}/dagRuns/{urllib.parse.quote(run['dag_run_id'])}/taskInstances"
        tis = api.pages(path, "task_instances")
        processes += sum(
            1 + len(api.get(f"{path}/{ti['task_id']}/{ti['map_index']}/tries")["task_instances"][:-1])
            if ti["try_number"] > 1 else 1
            for ti in tis
            if (iso(ti["start_date"]) or 0) >= since and (ti["duration"] or 0) > 0
        )  # fmt: skip
        shared = {
            ti["task_id"]: ti["duration"] or 0.0
            for ti in tis
            if ti["map_index"] < 0 and ti["state"] not in (None, "skipped", "removed", "upstream_failed")
        }
        mapped: dict[str, list[dict[str, Any]]] = {}
        for ti in tis:
            if ti["map_index"] >= 0 and ti["state"] == "success":
                mapped.setdefault(ti.get("rendered_map_index") or "", []).append(ti)
        for key, own in mapped.items():
            record = records.get(key)
            if record is None or record.loaded is None:
                continue
            ends = [iso(ti["end_date"]) or 0.0 for ti in own]
            if max(ends) < record.loaded - 0.5:
                continue  # this run's tasks for the file did not load it
            record.run_id, record.run_queued = run["dag_run_id"], iso(run["queued_at"])
            record.tasks = {**shared, **{ti["task_id"]: ti["duration"] or 0.0 for ti in own}}
            transforms = [iso(ti["end_date"]) for ti in own if ti["task_id"].endswith(".transform")]
            record.transformed = transforms[0] if transforms else None
        discover = next((ti for ti in tis if ti["task_id"] == "ingest.discover"), None)
        began, ended = (iso(discover["start_date"]), iso(discover["end_date"])) if discover else (None, None)
        for record in records.values():
            if record.run_id or record.loaded is None or began is None or ended is None:
                continue
            if began <= record.loaded <= ended + 0.5:
                record.run_id, record.run_queued = run["dag_run_id"], iso(run["queued_at"])
                record.tasks = dict(shared)
    return processes, runs


def busy(runs: list[dict[str, Any]], record: FileRecord) -> bool:
    """Whether another run of the DAG was active when the file's event came (its run had to wait)."""
    at = record.event or 0.0
    return any(
        r["id"] != record.run_id and (r["start_date"] or r["queued_at"] or 0) <= at <= (r["end_date"] or at)
        for r in runs
    )


def percentiles(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    if not ordered:
        return {}

    def pick(q: float) -> float:
        return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered) + 0.5) - 1))]

    return {
        "n": len(ordered),
        "p50": statistics.median(ordered),
        "p95": pick(0.95),
        "max": ordered[-1],
        "mean": statistics.fmean(ordered),
    }


def report(result: dict[str, Any]) -> None:
    files = [FileRecord(**{k: v for k, v in f.items() if k != "latency"}) for f in result["files"]]
    latencies = [f.latency for f in files if f.latency is not None]
    total = percentiles(latencies)
    print(f"\n{result['label']}: {len(latencies)} of {len(files)} files queryable", flush=True)
    if total:
        met = {name: total[name] <= limit for name, limit in TARGETS.items()}
        print(
            f"landed → queryable: p50 {total['p50']:.2f}s  p95 {total['p95']:.2f}s  max {total['max']:.2f}s  "
            f"mean {total['mean']:.2f}s   targets p50 ≤ 5s: {'met' if met['p50'] else 'NOT met'}, "
            f"p95 ≤ 10s: {'met' if met['p95'] else 'NOT met'}"
        )
    print(f"{'stage':26s} {'n':>3s} {'p50':>7s} {'p95':>7s} {'max':>7s}")
    by_stage: dict[str, list[float]] = {}
    for f in files:
        for name, seconds in stages(f).items():
            by_stage.setdefault(name, []).append(seconds)
    for name, values in by_stage.items():
        p = percentiles(values)
        print(f"{name:26s} {p['n']:3d} {p['p50']:6.2f}s {p['p95']:6.2f}s {p['max']:6.2f}s")
    idle = [
        f.run_queued - f.event
        for f in files
        if f.event is not None and f.run_queued is not None and not busy(result.get("runs", []), f)
    ]
    if idle:
        p = percentiles(idle)
        print(f"{'  of which DAG idle':26s} {p['n']:3d} {p['p50']:6.2f}s {p['p95']:6.2f}s {p['max']:6.2f}s")
    tasks: dict[str, list[float]] = {}
    for _run, task, seconds in {(f.run_id, t, s) for f in files for t, s in f.tasks.items()}:
        tasks.setdefault(task, []).append(seconds)  # a run's shared tasks once, a mapped one per file
    for task, values in sorted(tasks.items()):
        p = percentiles(values)
        print(f"  task {task:21s} {p['n']:3d} {p['p50']:6.2f}s {p['p95']:6.2f}s {p['max']:6.2f}s")
    loads = [x for _, x in result["load"]]
    if loads:
        print(
            f"load average (1 min) while measuring: min {min(loads):.2f} mean {statistics.fmean(loads):.2f} "
            f"max {max(loads):.2f} (nproc {result['machine']['nproc']})"
        )
    cpu, seconds = result["cpu"], result["window_seconds"]
    used = sum(cpu.values())
    per = ", ".join(f"{k} {v:.1f}" for k, v in sorted(cpu.items()))
    print(
        f"stack CPU: {used:.1f} s in {seconds:.0f} s ({used / seconds:.2f} cores; {per}); "
        f"{used / max(len(files), 1):.2f} CPU-s per file"
    )
    if processes := result.get("task_processes"):
        print(
            f"{processes} task processes: {cpu.get('tasks', 0.0) / processes:.2f} CPU-s each, and "
            f"{cpu.get('workers', 0.0) / processes:.2f} in the worker supervising it"
        )


def measure(args: argparse.Namespace) -> dict[str, Any]:
    with running_stack(args) as stack:
        api = Api(stack)
        poller = Poller(stack.project / "data" / "warehouse.duckdb", args.poll)
        poller.start()
        try:
            if args.warmup:
                warm_up(stack, api, poller, args.warmup, args.rows)
            poller.load.clear()
            cpu_before, started = component_cpu(stack), time.time()
            landed = drop_files(stack, args)
            keys = list(landed)
            wait_until(lambda: all_loaded(poller, keys), args.timeout, "the measured files to load")
            finished = time.time()
            cpu_after = component_cpu(stack)
            wait_until(lambda: api.active_runs() == 0, 300, "the last runs to finish")
        finally:
            poller.stop()
        records = {key: FileRecord(key=key, landed=at) for key, at in landed.items()}
        for key, record in records.items():
            entry = poller.ledger.get(key, {})
            record.state = entry.get("state")
            record.detected, record.loaded = entry.get("detected"), entry.get("loaded")
            record.queryable = poller.queryable.get(entry.get("file_id", ""))
        task_processes, runs = collect(api, records, started)
        return {
            "label": args.label,
            "mode": "burst" if args.burst else "trickle",
            "args": {k: v for k, v in vars(args).items()},
            "machine": machine(),
            "config": (stack.home / "airflow.cfg").read_text(),
            "feed": (stack.project / "feeds" / f"{FEED}.yaml").read_text(),
            "window_seconds": finished - started,
            "cpu": {k: cpu_after.get(k, 0.0) - cpu_before.get(k, 0.0) for k in cpu_after},
            "task_processes": task_processes,
            "runs": runs,
            "poller_misses": poller.misses,
            "load": poller.load,
            "files": [{**asdict(r), "latency": r.latency} for r in records.values()],
        }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--files", type=int, default=60, help="files dropped one by one (default 60)")
    parser.add_argument("--gap", default="1:9", help="seconds between two files, uniform in low:high")
    parser.add_argument("--burst", type=int, default=0, help="drop this many files at once instead")
    parser.add_argument("--rows", type=int, default=100, help="rows per file (~9 KB per 100)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--warmup", type=int, default=3, help="files loaded before measuring")
    parser.add_argument("--poll", type=float, default=0.25, help="warehouse poll interval (s)")
    parser.add_argument("--timeout", type=float, default=900)
    parser.add_argument("--label", default="default", help="names the scratch project and the result file")
    parser.add_argument("--parallelism", type=int, default=4, help="as `make run` (FEEDLINE_PARALLELISM)")
    parser.add_argument("--cfg", action="append", default=[], metavar="SECTION.OPTION=VALUE",
                        help="override an airflow.cfg option (repeatable)")  # fmt: skip
    parser.add_argument("--feed", action="append", default=[], metavar="FIELD.PATH=VALUE",
                        help="override a field of feeds/orders.yaml (repeatable)")  # fmt: skip
    parser.add_argument("--env", action="append", default=[], metavar="NAME=VALUE",
                        help="an environment variable for every stack process (repeatable)")  # fmt: skip
    parser.add_argument("--preload", default=None, metavar="MODULES",
                        help="modules the scheduler imports before forking workers ('' = none)")  # fmt: skip
    parser.add_argument("--profile-tasks", action="store_true", help="cProfile every task process")
    parser.add_argument("--attach", action="store_true", help="measure the running `make run` stack")
    parser.add_argument("--keep", action="store_true", help="leave the scratch stack running")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # unwind, so the scratch stack is stopped
    OUT.mkdir(parents=True, exist_ok=True)
    print(f"machine: {json.dumps(machine())}", flush=True)
    result = measure(args)
    path = OUT / f"{args.label}.json"
    path.write_text(json.dumps(result, indent=1))
    report(result)
    if args.profile_tasks:
        print_profile(OUT / args.label / "profiles")
    print(f"results: {path.relative_to(REPO)}")


if __name__ == "__main__":
    main()
