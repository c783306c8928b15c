"""Small files loaded by the discover task itself (FEEDLINE_INLINE_MAX_BYTES), large ones by their own
tasks, through `dag.test()`: same ledger states, rows, archive and failure handling as without it."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import duckdb
import pytest

from feedline.sample import write_orders_csv
from feedline.stack import Stack
from support import age

pytestmark = pytest.mark.airflow


@pytest.fixture
def project(airflow_project: Stack, monkeypatch: pytest.MonkeyPatch) -> Path:
    shutil.rmtree(airflow_project.project / "data", ignore_errors=True)
    monkeypatch.setenv("FEEDLINE_INLINE_MAX_BYTES", "100000")
    landing = airflow_project.project / "data" / "landing" / "orders"
    landing.mkdir(parents=True)
    return airflow_project.project


def _run(project: Path) -> Any:
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(project / "dags"), safe_mode=False)
    assert bag.import_errors == {}
    return bag.get_dag("feed_orders").test()


def _query(project: Path, sql: str) -> list[tuple[Any, ...]]:
    with duckdb.connect(str(project / "data" / "warehouse.duckdb"), read_only=True) as con:
        return con.execute(sql).fetchall()


def _ran(run: Any, task_id: str) -> list[str]:
    return sorted(
        str(ti.rendered_map_index or ti.map_index)
        for ti in run.get_task_instances()
        if ti.task_id == task_id and ti.state not in (None, "skipped", "removed")
    )


def test_small_files_load_in_discover_large_ones_in_their_own_tasks(project: Path) -> None:
    landing = project / "data" / "landing" / "orders"
    small = write_orders_csv(landing / "small.csv", rows=300, seed=61, start_id=1)
    large = write_orders_csv(landing / "large.csv", rows=3_000, seed=62, start_id=100_000)
    assert small.bytes < 100_000 < large.bytes
    for name in ("small.csv", "large.csv"):
        age(landing / name)

    run = _run(project)

    assert run.state == "success"
    assert _ran(run, "process.transform") == _ran(run, "process.load") == ["large.csv"]
    clean = {k: s.rows - s.bad - s.duplicates for k, s in (("small.csv", small), ("large.csv", large))}
    ledger = _query(project, "select key, state, rows_in, rows_loaded, attempts from feedline_audit.files")
    assert sorted(ledger) == [
        ("large.csv", "loaded", large.rows, clean["large.csv"], 1),
        ("small.csv", "loaded", small.rows, clean["small.csv"], 1),
    ]
    total = sum(clean.values())
    assert _query(project, "select count(*), count(distinct order_id) from orders") == [(total, total)]
    report = run.get_task_instance("post_process.report").xcom_pull(task_ids="post_process.report")
    assert sorted(report["files"]) == ["large.csv", "small.csv"]
    assert sorted(p.name for p in (project / "data" / "archive" / "orders").iterdir()) == [
        "large.csv",
        "small.csv",
    ]
    # The file metrics the per-file tasks record, recorded by discover for the file it loaded.
    (file_id,) = _query(project, "select file_id from feedline_audit.files where key = 'small.csv'")[0]
    recorded = _query(
        project,
        f"select task_id, value from feedline_audit.metrics where file_id = '{file_id}' "
        "and name = 'file.rows_loaded'",
    )
    assert recorded == [("ingest.discover", clean["small.csv"])]


def test_a_bad_small_file_is_quarantined_by_its_own_tasks_and_fails_the_run(project: Path) -> None:
    landing = project / "data" / "landing" / "orders"
    good = write_orders_csv(landing / "good.csv", rows=200, seed=63, start_id=1)
    (landing / "bad.csv").write_text("order_id,amount\n1,2.00\n")
    for name in ("good.csv", "bad.csv"):
        age(landing / name)

    run = _run(project)

    assert run.state == "failed"  # as without inline loading: cleanup fails the run, naming the file
    assert _ran(run, "process.transform") == ["bad.csv"]
    assert run.get_task_instance("process.transform", map_index=0).state == "failed"
    states = dict(_query(project, "select key, state from feedline_audit.files"))
    assert states == {"good.csv": "loaded", "bad.csv": "quarantined"}
    assert _query(project, "select count(*) from orders") == [(good.rows - good.bad - good.duplicates,)]
    assert (project / "data" / "quarantine" / "orders" / "files" / "bad.csv").exists()
    assert (project / "data" / "archive" / "orders" / "good.csv").exists()
