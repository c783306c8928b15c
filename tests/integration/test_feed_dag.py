"""A feed DAG run through Airflow (`dag.test()`): rows in the table, states in the ledger, files moved."""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Any

import duckdb
import pytest

from feedline.sample import write_orders_csv
from feedline.stack import Stack
from support import age

pytestmark = pytest.mark.airflow


@pytest.fixture
def project(airflow_project: Stack) -> Path:
    data = airflow_project.project / "data"
    shutil.rmtree(data, ignore_errors=True)
    return airflow_project.project


def _dag(project: Path) -> Any:
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(project / "dags"), safe_mode=False)
    assert bag.import_errors == {}
    return bag.get_dag("feed_orders")


def _query(project: Path, sql: str) -> list[tuple[Any, ...]]:
    with duckdb.connect(str(project / "data" / "warehouse.duckdb"), read_only=True) as con:
        return con.execute(sql).fetchall()


def test_dag_run_loads_every_file_once(project: Path) -> None:
    landing = project / "data" / "landing" / "orders"
    landing.mkdir(parents=True)
    first = write_orders_csv(landing / "a.csv", rows=400, seed=11, start_id=1)
    second = write_orders_csv(landing / "b.csv.gz", rows=300, seed=12, start_id=10_000, gzip=True)
    age(landing / "a.csv")
    age(landing / "b.csv.gz")
    expected = (first.rows - first.bad - first.duplicates) + (second.rows - second.bad - second.duplicates)

    run = _dag(project).test()
    assert run.state == "success"
    assert _query(project, "select count(*), count(distinct order_id) from orders") == [(expected, expected)]
    ledger = _query(
        project,
        "select key, state, rows_in, rows_loaded, rows_rejected, duplicates "
        "from feedline_audit.files order by key",
    )
    assert ledger == [
        (
            "a.csv",
            "loaded",
            first.rows,
            first.rows - first.bad - first.duplicates,
            first.bad,
            first.duplicates,
        ),
        (
            "b.csv.gz",
            "loaded",
            second.rows,
            second.rows - second.bad - second.duplicates,
            second.bad,
            second.duplicates,
        ),
    ]
    assert sorted(p.name for p in landing.iterdir()) == []
    assert sorted(p.name for p in (project / "data" / "archive" / "orders").iterdir()) == [
        "a.csv",
        "b.csv.gz",
    ]

    # The same content delivered again is a no-op: no new ledger row, no new table row.
    shutil.copy(project / "data" / "archive" / "orders" / "a.csv", landing / "a.csv")
    age(landing / "a.csv")
    assert _dag(project).test().state == "success"
    assert _query(project, "select count(*) from orders") == [(expected,)]
    assert _query(project, "select count(*) from feedline_audit.files") == [(2,)]
    assert list(landing.iterdir()) == []


def test_bad_file_is_quarantined_and_good_ones_still_load(project: Path) -> None:
    landing = project / "data" / "landing" / "orders"
    landing.mkdir(parents=True)
    good = write_orders_csv(landing / "good.csv", rows=200, seed=21, start_id=1)
    (landing / "bad.csv").write_text("order_id,amount\n1,2.00\n")
    age(landing / "good.csv")
    age(landing / "bad.csv")

    run = _dag(project).test()
    assert run.state == "failed"  # the cleanup task fails the run with what went wrong, never hiding it
    states = dict(_query(project, "select key, state from feedline_audit.files"))
    assert states == {"good.csv": "loaded", "bad.csv": "quarantined"}
    error = _query(project, "select error from feedline_audit.files where key = 'bad.csv'")[0][0]
    assert "customer_email" in error and "bad.csv" in error
    assert _query(project, "select count(*) from orders") == [(good.rows - good.bad - good.duplicates,)]
    quarantine = project / "data" / "quarantine" / "orders" / "files"
    assert (quarantine / "bad.csv").read_text() == "order_id,amount\n1,2.00\n"
    assert "customer_email" in (quarantine / "bad.csv.reason.txt").read_text()
    leftovers = _query(
        project, "select table_name from information_schema.tables where table_name like '%stag%'"
    )
    assert leftovers == []


def test_sensor_mode_waits_in_a_deferrable_sensor_then_loads(project: Path) -> None:
    import threading

    from airflow.dag_processing.dagbag import DagBag

    feeds = project / "feeds" / "orders.yaml"
    original = feeds.read_text()
    feeds.write_text(original.replace("trigger: watcher", "trigger: sensor"))
    landing = project / "data" / "landing" / "orders"
    landing.mkdir(parents=True)
    written: list[int] = []
    deferred: list[str] = []

    def land_later() -> None:  # the file arrives once the sensor has deferred to its trigger
        from airflow.models import TaskInstance
        from airflow.utils.session import create_session

        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            with create_session() as session:
                ti = session.query(TaskInstance).filter_by(task_id="ingest.wait_for_file").one_or_none()
                if ti is not None and ti.next_method == "execute_complete":  # set when it defers
                    deferred.append(ti.next_method)
                    break
            time.sleep(0.2)
        stats = write_orders_csv(landing / ".s.csv.part", rows=100, seed=41)
        age(landing / ".s.csv.part").rename(landing / "s.csv")
        written.append(stats.rows - stats.bad - stats.duplicates)

    try:
        dag = DagBag(dag_folder=str(project / "dags"), safe_mode=False).get_dag("feed_orders")
        lander = threading.Thread(target=land_later)
        lander.start()
        run = dag.test()
        lander.join()
        assert run.state == "success"
        sensor = run.get_task_instance("ingest.wait_for_file")
        assert sensor.state == "success"
        assert deferred == ["execute_complete"]  # it waited in a trigger, not in a worker slot
        assert _query(project, "select count(*) from orders") == [(written[0],)]
    finally:
        feeds.write_text(original)


def _next_run_events() -> list[tuple[str, str]]:
    """(asset name, source run id) of the asset events the feed DAG's `next_run` task emitted."""
    from airflow.models.asset import AssetEvent, AssetModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        rows = session.execute(
            select(AssetModel.name, AssetEvent.source_run_id)
            .join(AssetModel, AssetModel.id == AssetEvent.asset_id)
            .where(AssetEvent.source_dag_id == "feed_orders")
            .where(AssetEvent.source_task_id == "post_process.next_run")
        )
        return [(str(name), str(run_id)) for name, run_id in rows]


def test_a_run_that_took_its_limit_asks_for_another_and_the_next_one_does_not(project: Path) -> None:
    feed_file = project / "feeds" / "orders.yaml"
    original = feed_file.read_text()
    feed_file.write_text(original + "max_files_per_run: 2\n")
    try:
        landing = project / "data" / "landing" / "orders"
        landing.mkdir(parents=True)
        for n in range(3):
            write_orders_csv(landing / f"f{n}.csv", rows=50, seed=30 + n, start_id=1 + 1_000 * n)
            age(landing / f"f{n}.csv", seconds=60 - n)  # f0 is the oldest: taken first
        before = _next_run_events()

        first = _dag(project).test()
        assert first.state == "success"
        states = dict(_query(project, "select key, state from feedline_audit.files"))
        assert states == {"f0.csv": "loaded", "f1.csv": "loaded", "f2.csv": "detected"}
        assert first.get_task_instance("post_process.next_run").state == "success"
        assert _next_run_events() == [*before, ("feedline_orders_landing", first.run_id)]

        second = _dag(project).test()
        assert second.state == "success"
        assert {s for (s,) in _query(project, "select state from feedline_audit.files")} == {"loaded"}
        assert second.get_task_instance("post_process.next_run").state == "skipped"
        assert _next_run_events() == [*before, ("feedline_orders_landing", first.run_id)]
    finally:
        feed_file.write_text(original)
