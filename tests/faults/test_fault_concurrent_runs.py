"""Fault: two runs of the same feed at once, as two OS processes (`feedline run`) on the same files."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from fault_support import Project, assert_settled, control_snapshot, drop, orders_feed

FILES = 3
# `feedline run --feed orders`, held after its imports until the test releases both processes at once.
STARTER = """
import sys
import duckdb, polars, psycopg
from feedline.cli import app
print("ready", flush=True)
sys.stdin.readline()
sys.argv = ["feedline", "run", "--feed", "orders"]
app()
"""


@pytest.mark.timeout(240)
def test_two_runs_at_once_load_every_file_once(
    new_project: Callable[..., Project], warehouse_url: str, tmp_path: Path
) -> None:
    project = new_project(warehouse_url)
    feed = project.add_feed(orders_feed())
    landing = project.landing()
    kept = tmp_path / "kept"
    kept.mkdir()
    for n in range(FILES):
        drop(landing, f"part-{n}.csv", rows=40_000, seed=60 + n, start_id=1 + n * 100_000)
        shutil.copyfile(landing / f"part-{n}.csv", kept / f"part-{n}.csv")

    env = {**os.environ, **project.env}
    runs = [
        subprocess.Popen(
            [sys.executable, "-c", STARTER],
            env=env,
            cwd=project.home,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for _ in range(2)
    ]
    try:
        for run in runs:
            assert run.stdout is not None and run.stdout.readline().strip() == "ready"
        for run in runs:
            assert run.stdin is not None
            run.stdin.write("go\n")
            run.stdin.flush()
        outputs = [run.communicate(timeout=180)[0] for run in runs]
    finally:
        for run in runs:
            if run.poll() is None:
                run.kill()
                run.wait()
    report = "\n---\n".join(outputs)
    assert [run.returncode for run in runs] == [0, 0], report

    pipeline = project.pipeline()
    expected = control_snapshot(feed, [sorted(kept.iterdir())], tmp_path / "control")
    entries = assert_settled(pipeline, expected, files=FILES)
    assert sorted(e.key for e in entries) == [f"part-{n}.csv" for n in range(FILES)]
    assert sum(e.attempts for e in entries) > FILES, "the runs overlapped: both worked on some file"
