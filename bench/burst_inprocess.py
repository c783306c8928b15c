"""The floor under bench/burst.py: the same burst through the feed's own steps in one process, no Airflow.

    .venv/bin/python bench/burst_inprocess.py --files 1000 --rows 20 [--warehouse duckdb|postgres]

What a DAG that hands each task a batch of files (each file still its own ledger entry and transaction)
could approach: discover, then transform and load file after file in one process, then archive. Prints
elapsed time, files/s, the mean milliseconds of each step per file and the process's peak RSS, and runs
bench/burst.py's exactly-once check.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import resource
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from burst import REPO, bench_feed, verify, write_files

sys.path.insert(0, str(REPO / "tests"))


@contextmanager
def warehouse_target(kind: str, workdir: Path) -> Iterator[str]:
    if kind == "duckdb":
        yield str(workdir / "warehouse.duckdb")
        return
    from warehouses import fresh_database

    with fresh_database() as url:
        yield url


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", type=int, default=1000)
    parser.add_argument("--rows", type=int, default=20)
    parser.add_argument("--warehouse", choices=("duckdb", "postgres"), default="duckdb")
    parser.add_argument("--no-session", action="store_true",
                        help="a connection per transaction (no warehouse sessions)")  # fmt: skip
    args = parser.parse_args(argv)

    from feedline.airflow.dag_factory import INLINE_SESSION_SECONDS
    from feedline.contract import load_feed
    from feedline.pipeline import FeedPipeline
    from feedline.settings import Settings
    from support import age, make_project

    with (
        tempfile.TemporaryDirectory(prefix="feedline-burst-floor-") as tmp,
        warehouse_target(args.warehouse, Path(tmp)) as warehouse,
    ):
        project = make_project(Path(tmp) / "project", {"orders.yaml": bench_feed(args.files)})
        settings = Settings.from_env({"FEEDLINE_HOME": str(project), "FEEDLINE_WAREHOUSE": warehouse})
        pipeline = FeedPipeline(load_feed(project / "feeds" / "orders.yaml"), settings)
        landing = Path(settings.source_location("data/landing/orders"))
        burst = write_files(landing / ".staging", "burst-floor", args.files, args.rows, 0, 0)
        for path in burst.paths:
            os.replace(age(path), landing / path.name)
        sessions = "a connection per transaction" if args.no_session else "warehouse sessions"
        print(
            f"==> {len(burst.paths)} files, {burst.rows:,} rows; {args.warehouse} warehouse, {sessions}",
            flush=True,
        )

        spent = {"discover": 0.0, "transform": 0.0, "load": 0.0, "archive": 0.0}
        started = time.monotonic()
        refs = pipeline.discover().refs
        spent["discover"] = time.monotonic() - started
        session, release_at = contextlib.ExitStack(), 0.0
        for ref in refs:
            if not args.no_session and time.monotonic() >= release_at:  # as the DAG's inline loop does
                session.close()
                session.enter_context(pipeline.warehouse.session())
                release_at = time.monotonic() + INLINE_SESSION_SECONDS
            mark = time.monotonic()
            result = pipeline.transform(ref)
            middle = time.monotonic()
            pipeline.load(ref, result)
            spent["transform"] += middle - mark
            spent["load"] += time.monotonic() - middle
        session.close()
        mark = time.monotonic()
        pipeline.archive()
        spent["archive"] = time.monotonic() - mark
        elapsed = time.monotonic() - started
        pipeline.warehouse.close()

        per_file = {step: 1000 * seconds / max(len(refs), 1) for step, seconds in spent.items()}
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(
            f"elapsed {elapsed:.1f} s | {len(refs) / elapsed:.1f} files/s | "
            f"{burst.clean / elapsed:,.0f} rows/s | per file: transform {per_file['transform']:.0f} ms, "
            f"load {per_file['load']:.0f} ms | discover {spent['discover']:.1f} s, "
            f"archive {spent['archive']:.1f} s | peak RSS {peak:,.0f} MiB | "
            f"nproc {os.cpu_count()}, load average {os.getloadavg()[0]:.1f}"
        )
        problems = verify(warehouse, burst)
        for problem in problems:
            print(f"EXACTLY-ONCE FAILED: {problem}")
        if not problems:
            print(f"exactly-once: {len(burst.paths)} ledger rows, all loaded; {burst.clean:,} rows once each")
        return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
