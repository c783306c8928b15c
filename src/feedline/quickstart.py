"""`make run`: bring up the local Airflow stack, drop sample files, wait until they are loaded, report.

Runs in the foreground and stops every process it started on Ctrl-C; `--detach` leaves the stack up.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import signal
import sys
import time
from pathlib import Path
from types import FrameType
from typing import Any

from rich.console import Console
from rich.table import Table

from feedline.stack import Stack, project_stack

console = Console(highlight=False)

SAMPLES = (  # name, rows, seed, first order id, gzip — the second overlaps the first to show upserts
    ("orders_sample_1.csv", 2000, 1, 1, False),
    ("orders_sample_2.csv", 2000, 2, 1501, False),
    ("orders_sample_3.csv.gz", 1000, 3, 3501, True),
)


def drop_samples(landing: Path) -> list[Path]:
    """Write the sample files into the landing folder, each atomically (written aside, then renamed)."""
    from feedline.sample import write_orders_csv

    landing.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, rows, seed, start, gz in SAMPLES:
        final = landing / name
        partial = landing / f".{name}.part"
        write_orders_csv(partial, rows=rows, seed=seed, start_id=start, gzip=gz)
        os.replace(partial, final)
        paths.append(final)
    return paths


def _identity(path: Path) -> tuple[str, int]:
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    return f"sha256:{digest}", path.stat().st_size


def wait_loaded(stack: Stack, files: list[tuple[str, str, int]], timeout: float) -> dict[str, str]:
    """Wait until every (key, identity, size) of the orders feed is in a terminal ledger state."""
    from feedline.ledger import TERMINAL, Ledger, file_id_of
    from feedline.settings import Settings
    from feedline.warehouse import connect_warehouse

    settings = Settings.from_env(stack.env())
    deadline = time.monotonic() + timeout
    states: dict[str, str] = {}
    while time.monotonic() < deadline:
        ledger = Ledger(connect_warehouse(settings.warehouse, read_only=True))
        try:
            for key, identity, size in files:
                entry = ledger.get(file_id_of("orders", key, identity, size))
                states[key] = entry.state.value if entry else "waiting"
        except Exception as exc:  # the warehouse may be busy or not yet created
            states = {key: f"waiting ({type(exc).__name__})" for key, _, _ in files}
        if all(state in {s.value for s in TERMINAL} for state in states.values()):
            return states
        time.sleep(2)
    raise TimeoutError(f"sample files not loaded after {timeout:.0f}s: {states}; see {stack.home}/logs")


def report(stack: Stack) -> None:
    """Print what the warehouse holds: rows per table and files per state, from the ledger."""
    from feedline.cli import status_table
    from feedline.contract import load_feeds
    from feedline.settings import Settings
    from feedline.warehouse import connect_warehouse

    settings = Settings.from_env(stack.env())
    warehouse = connect_warehouse(settings.warehouse, read_only=True)
    table = Table(title="Warehouse tables")
    for column in ("feed", "table", "rows"):
        table.add_column(column)
    for feed in load_feeds(settings.feeds_dir).feeds:
        try:
            rows: Any = warehouse.count_rows(feed)
        except Exception:
            rows = "-"
        table.add_row(feed.name, feed.target.table, str(rows))
    console.print(table)
    console.print(status_table(warehouse))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m feedline.quickstart")
    parser.add_argument("--detach", action="store_true", help="leave the stack running and return")
    parser.add_argument("--timeout", type=float, default=300)
    args = parser.parse_args(argv)

    stack = project_stack()
    console.print(f"[bold]feedline[/] quickstart in {stack.project}")
    console.print("==> writing Airflow config and migrating the metadata DB (SQLite)")
    stack.configure()
    stack.migrate()
    console.print("==> starting api-server, scheduler, dag-processor, triggerer")
    stack.start()

    def stop(signum: int = 0, frame: FrameType | None = None) -> None:
        console.print("\n==> stopping the stack")
        stopped = stack.stop()
        console.print(f"stopped: {', '.join(stopped) or 'nothing was running'}")
        sys.exit(0)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)  # also when started with SIGINT ignored (e.g. from a script)
    try:
        stack.wait_healthy()
        for dag in _feed_dags(stack):
            stack.api("PATCH", f"dags/{dag}", {"is_paused": False})
        landing = stack.project / "data" / "landing" / "orders"
        console.print(f"==> dropping sample files into {landing.relative_to(stack.project)}/")
        samples = drop_samples(landing)
        files = [(p.name, *_identity(p)) for p in samples]
        states = wait_loaded(stack, files, args.timeout)
        console.print("==> sample files: " + ", ".join(f"{k} {v}" for k, v in states.items()))
        report(stack)
        console.print(f"\nAirflow UI: [bold]{stack.url}[/]  login: admin / {stack.password()}")
        console.print(f"Dashboard: [bold]{stack.url}/feedline/[/] (in the UI: Browse → Feeds)")
        console.print(f"Warehouse: {stack.project / 'data' / 'warehouse.duckdb'} (query it with duckdb)")
        console.print("Drop more CSV files into data/landing/orders/ and they are loaded within seconds.")
        if args.detach:
            console.print("The stack keeps running; stop it with: [bold]make stop[/]")
            return 0
        console.print("Press [bold]Ctrl-C[/] to stop (or run [bold]make stop[/] in another terminal).")
        while stack.pids():
            time.sleep(2)
        console.print("the stack was stopped")
        return 0
    except SystemExit:
        raise
    except BaseException:
        if not args.detach:
            stack.stop()
        raise
    return 0


def _feed_dags(stack: Stack, timeout: float = 120) -> list[str]:
    """Wait until the dag-processor has parsed the feed DAGs; return their ids."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        body = stack.api("GET", "dags?tags=feedline&limit=1000")
        dags = [d["dag_id"] for d in body.get("dags", [])] if isinstance(body, dict) else []
        if dags:
            return dags
        time.sleep(2)
    raise TimeoutError(
        f"no feed DAG parsed after {timeout:.0f}s; see {stack.home}/logs and `feedline validate`"
    )


if __name__ == "__main__":
    sys.exit(main())
