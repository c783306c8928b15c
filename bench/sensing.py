"""The cost of waiting: worker slots held and CPU used per hour while no file arrives, per trigger mode.

    .venv/bin/python bench/sensing.py [--minutes 8] [--modes idle,poke,deferrable,watcher]
        [--sensor-sweep "*/4 * * * *"]      # the sensor modes wait up to one sweep period, then sweep

Each mode runs alone on a fresh stack (`feedline.stack.Stack`, the `make run` config) with one DAG, the
orders feed, and an empty landing folder:

    idle        no DAG at all: what the four Airflow components cost by themselves (the baseline)
    poke        the feed's sensor-mode DAG with its FileSensor in poke mode (`deferrable=False`): the
                classic design, a worker slot held while the sensor waits
    deferrable  the feed with `schedule.trigger: sensor`: a deferrable FileSensor, waiting in the triggerer
    watcher     the feed with `schedule.trigger: watcher` (the default): an AssetWatcher on the folder

After a warm-up, for `--minutes` the script samples the metadata DB twice a second (read-only SQLite, so
the API server does no extra work) for task instances `running` (each holds a worker slot) and
`deferred` (each waits in the triggerer), and takes the CPU seconds of every component's process tree
(psutil; task processes are reaped by their LocalExecutor worker, so they count). Figures are scaled to
one hour; the marginal cost of a mode is its figure minus idle's. A sensor-mode run waits up to one period
of `schedule.sweep` (`--sensor-sweep`), then sweeps anyway (discover, report, archive) and the next run
waits again: the window should hold a few such cycles, which are counted. The watcher's fallback sweep is
off while it waits; one sweep run is then triggered and measured, and `--sweeps-per-hour` of them (2 for
the example feed's */30) are added to its hourly cost. Results go to bench/out/sensing/<mode><label>.json.
"""

from __future__ import annotations

import argparse
import itertools
import json
import shutil
import signal
import sqlite3
import sys
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from latency import REPO, Api, component_cpu, machine, parse_assignments, patch_config

from feedline.stack import Stack, free_port

OUT = REPO / "bench" / "out" / "sensing"
MODES = ("idle", "poke", "deferrable", "watcher")
DAG_ID = "feed_orders"

#: The poke variant: the factory's own sensor-mode DAG, its sensor switched to a blocking poke.
POKE_DAG = '''"""Bench only: the orders feed's sensor-mode DAG, its FileSensor poking in a worker slot."""

from feedline.airflow.dag_factory import build_dags

dags = build_dags()
for dag in dags.values():
    sensor = dag.get_task("ingest.wait_for_file")
    sensor.deferrable = False
    sensor.start_from_trigger = False
    sensor.mode = "poke"
globals().update(dags)
'''


def make_project(root: Path, mode: str, sensor_sweep: str) -> Path:
    """A project with one DAG file (none for idle) and the orders feed in the mode's trigger."""
    import yaml

    if root.exists():
        shutil.rmtree(root)
    (root / "dags").mkdir(parents=True)
    (root / "feeds").mkdir()
    (root / "data" / "landing" / "orders").mkdir(parents=True)
    if mode == "idle":
        return root
    spec = yaml.safe_load((REPO / "feeds" / "orders.yaml").read_text())
    spec["schedule"]["trigger"] = "watcher" if mode == "watcher" else "sensor"
    # The watcher's sweep is measured on its own; a sensor's sweep period is how long it waits.
    spec["schedule"]["sweep"] = None if mode == "watcher" else sensor_sweep
    (root / "feeds" / "orders.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    if mode == "poke":
        (root / "dags" / "feeds.py").write_text(POKE_DAG)
    else:
        shutil.copy(REPO / "dags" / "feeds.py", root / "dags" / "feeds.py")
    return root


class SlotSampler(threading.Thread):
    """Counts running and deferred task instances in the metadata DB every `interval` seconds."""

    def __init__(self, database: Path, interval: float = 0.5) -> None:
        super().__init__(daemon=True)
        self.database, self.interval = database, interval
        self.samples: list[tuple[float, int, int]] = []  # (time, running, deferred)
        self.errors = 0
        self._halt = threading.Event()

    def run(self) -> None:
        con = sqlite3.connect(f"file:{self.database}?mode=ro", uri=True, timeout=2)
        try:
            while not self._halt.is_set():
                try:
                    rows = dict(
                        con.execute(
                            "SELECT state, count(*) FROM task_instance "
                            "WHERE state IN ('running', 'deferred') GROUP BY state"
                        ).fetchall()
                    )
                    self.samples.append((time.time(), rows.get("running", 0), rows.get("deferred", 0)))
                except sqlite3.Error:
                    self.errors += 1
                self._halt.wait(self.interval)
        finally:
            con.close()

    def stop(self) -> None:
        self._halt.set()
        if self.ident is not None:  # started
            self.join(timeout=5)

    def integral(self, since: float, until: float) -> tuple[float, float]:
        """(running, deferred) task-instance-seconds between `since` and `until`."""
        running = deferred = 0.0
        points = [s for s in self.samples if since <= s[0] <= until]
        for (t0, r, d), (t1, _, _) in itertools.pairwise(points):
            running += r * (t1 - t0)
            deferred += d * (t1 - t0)
        return running, deferred


def count_in_window(database: Path, since: float, until: float, *, column: str, task: str = "%") -> int:
    """Task attempts (current tries and the history of earlier ones) whose `column` (start_date or
    end_date) falls in the window, of tasks whose id is like `task`."""
    from datetime import UTC, datetime

    lo, hi = (datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%d %H:%M:%S") for t in (since, until))
    con = sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=5)
    try:
        total = 0
        for table in ("task_instance", "task_instance_history"):
            sql = f"SELECT count(*) FROM {table} WHERE {column} >= ? AND {column} < ? AND task_id LIKE ?"
            total += con.execute(sql, [lo, hi, task]).fetchone()[0]
        return int(total)
    finally:
        con.close()


@dataclass
class ModeResult:
    mode: str
    seconds: float
    running_seconds: float
    deferred_seconds: float
    task_starts: int
    cycles: int  # sensor waits that ended (timed out or found a file) in the window
    cpu: dict[str, float]
    load: list[float] = field(default_factory=list)
    sweep: dict[str, float] | None = None

    def per_hour(self, value: float) -> float:
        return value * 3600 / self.seconds


def wait_for(condition: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(2)
    raise SystemExit(f"timed out after {timeout:.0f}s waiting for {what}")


def measure_window(stack: Stack, sampler: SlotSampler, seconds: float) -> dict[str, Any]:
    import os

    cpu_before, start = component_cpu(stack), time.time()
    loads = []
    while (left := seconds - (time.time() - start)) > 0:
        time.sleep(min(10.0, left))
        loads.append(os.getloadavg()[0])
    end = time.time()
    cpu_after = component_cpu(stack)
    running, deferred = sampler.integral(start, end)
    return {
        "seconds": end - start,
        "running_seconds": running,
        "deferred_seconds": deferred,
        "task_starts": count_in_window(stack.home / "airflow.db", start, end, column="start_date"),
        "cycles": count_in_window(
            stack.home / "airflow.db", start, end, column="end_date", task="%wait_for_file"
        ),
        "cpu": {k: cpu_after.get(k, 0.0) - cpu_before.get(k, 0.0) for k in cpu_after},
        "load": loads,
    }


def measure_sweep(stack: Stack, api: Api, sampler: SlotSampler) -> dict[str, float]:
    """One run of the feed DAG with nothing to load, as its fallback sweep would start it."""
    cpu_before, start = component_cpu(stack), time.time()
    stack.api("POST", f"dags/{DAG_ID}/dagRuns", {"logical_date": None})
    time.sleep(2)
    wait_for(lambda: api.active_runs() == 0, 300, "the sweep run to finish")
    end = time.time()
    cpu_after = component_cpu(stack)
    running, _ = sampler.integral(start, end)
    return {
        "seconds": end - start,
        "running_seconds": running,
        "task_starts": count_in_window(stack.home / "airflow.db", start, end, column="start_date"),
        "cpu_seconds": sum(cpu_after.values()) - sum(cpu_before.values()),
    }


def run_mode(mode: str, args: argparse.Namespace) -> ModeResult:
    project = make_project(OUT / mode / "project", mode, args.sensor_sweep)
    stack = Stack(project=project, home=project / ".airflow", port=free_port(), parallelism=args.parallelism)
    stack.configure()
    patch_config(stack, parse_assignments(args.cfg, "--cfg"))
    stack.migrate()
    sampler = SlotSampler(stack.home / "airflow.db")
    try:  # a stack interrupted while it starts is stopped too
        stack.start()
        stack.wait_healthy(timeout=600)
        api = Api(stack)
        if mode != "idle":
            wait_for(
                lambda: bool(api.get("dags", dag_id_pattern=DAG_ID)["dags"]), 300, "the DAG to be parsed"
            )
        print(f"{mode}: stack healthy; warming up {args.warmup:.0f}s", flush=True)
        sampler.start()
        time.sleep(args.warmup)
        window = measure_window(stack, sampler, args.minutes * 60)
        sweep = measure_sweep(stack, api, sampler) if mode == "watcher" else None
        return ModeResult(mode=mode, sweep=sweep, **window)
    finally:
        sampler.stop()
        stack.stop()


def table(results: dict[str, ModeResult], sweeps_per_hour: float) -> list[str]:
    """The side-by-side table: per hour, absolute and above idle, and the ratio against poke."""
    idle = results.get("idle")
    idle_cpu = idle.per_hour(sum(idle.cpu.values())) if idle else 0.0
    lines = [
        "| mode | worker-slot-s / h | deferred task-s / h | task starts / h | sensor cycles / h "
        "| stack CPU-s / h | CPU-s / h above idle | slot-s vs poke | CPU above idle vs poke |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    rows: dict[str, list[float]] = {}
    for mode, r in results.items():
        slots, cpu = r.per_hour(r.running_seconds), r.per_hour(sum(r.cpu.values()))
        starts = r.per_hour(r.task_starts)
        if r.sweep:
            slots += r.sweep["running_seconds"] * sweeps_per_hour
            cpu += r.sweep["cpu_seconds"] * sweeps_per_hour
            starts += r.sweep["task_starts"] * sweeps_per_hour
        above = cpu - idle_cpu if mode != "idle" else 0.0
        rows[mode] = [slots, r.per_hour(r.deferred_seconds), starts, r.per_hour(r.cycles), cpu, above]
    poke = rows.get("poke")
    for mode, (slots, deferred, starts, cycles, cpu, above) in rows.items():
        vs_slots = vs_cpu = "—"
        if poke and mode not in ("poke", "idle"):
            vs_slots = f"-{1 - slots / poke[0]:.0%}" if poke[0] else "—"
            vs_cpu = f"-{1 - above / poke[5]:.0%}" if poke[5] > 0 else "—"
        lines.append(
            f"| {mode} | {slots:.0f} | {deferred:.0f} | {starts:.0f} | {cycles:.0f} | {cpu:.0f} | "
            f"{above:.0f} | {vs_slots} | {vs_cpu} |"
        )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--minutes", type=float, default=8, help="measured window per mode")
    parser.add_argument("--sensor-sweep", default="*/4 * * * *", help="sweep cron of the sensor modes")
    parser.add_argument("--modes", default=",".join(MODES), help=f"comma-separated, of {', '.join(MODES)}")
    parser.add_argument("--warmup", type=float, default=120, help="seconds between healthy and measuring")
    parser.add_argument("--sweeps-per-hour", type=float, default=2, help="the watcher's fallback sweeps")
    parser.add_argument("--parallelism", type=int, default=4)
    parser.add_argument("--cfg", action="append", default=[], metavar="SECTION.OPTION=VALUE")
    parser.add_argument("--label", default="", help="suffix of the result files")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # unwind, so the stack is stopped
    OUT.mkdir(parents=True, exist_ok=True)
    print(f"machine: {json.dumps(machine())}", flush=True)
    results: dict[str, ModeResult] = {}
    for mode in args.modes.split(","):
        if mode not in MODES:
            raise SystemExit(f"--modes: {mode!r} is not one of {', '.join(MODES)}")
        result = run_mode(mode, args)
        results[mode] = result
        (OUT / f"{mode}{args.label}.json").write_text(json.dumps(asdict(result), indent=1))
        loads = result.load
        print(
            f"{mode}: {result.running_seconds:.1f} slot-s, {result.deferred_seconds:.1f} deferred-s, "
            f"{result.task_starts} task starts, {result.cycles} sensor cycles, "
            f"{sum(result.cpu.values()):.1f} CPU-s in "
            f"{result.seconds:.0f}s (load {min(loads):.1f} to {max(loads):.1f}); sweep {result.sweep}",
            flush=True,
        )
    print("\n".join(["", *table(results, args.sweeps_per_hour)]))


if __name__ == "__main__":
    main()
