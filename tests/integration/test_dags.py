"""DAG integrity: every DAG file imports, one DAG per valid feed, invalid feeds become an import error."""

from __future__ import annotations

from pathlib import Path

import pytest

from feedline.stack import Stack
from support import make_project

pytestmark = pytest.mark.airflow

GOOD = (Path(__file__).resolve().parents[2] / "feeds" / "orders.yaml").read_text()


def _dagbag(folder: Path, monkeypatch: pytest.MonkeyPatch, project: Path):  # type: ignore[no-untyped-def]
    from airflow.dag_processing.dagbag import DagBag

    monkeypatch.setenv("FEEDLINE_HOME", str(project))
    return DagBag(dag_folder=str(folder), safe_mode=False)


def test_every_dag_imports_without_errors(airflow_project: Stack, monkeypatch: pytest.MonkeyPatch) -> None:
    bag = _dagbag(airflow_project.project / "dags", monkeypatch, airflow_project.project)
    assert bag.import_errors == {}
    assert set(bag.dag_ids) == {"feed_orders", "feedline_monitoring"}
    dag = bag.get_dag("feed_orders")
    assert {t.task_id for t in dag.tasks} == {
        "ingest.discover",
        "process.transform",
        "process.load",
        "post_process.report",
        "post_process.archive",
        "post_process.next_run",  # watcher mode: asks for another run when a run took its limit
        "cleanup",
    }
    assert [o.name for o in dag.get_task("post_process.next_run").outlets] == ["feedline_orders_landing"]
    assert dag.max_active_runs == 1
    transform = dag.get_task("process.transform")
    assert transform.retries == 3
    assert transform.retry_exponential_backoff == 2.0
    assert transform.max_retry_delay.total_seconds() == 1800
    assert dag.get_task("cleanup").trigger_rule == "one_failed"
    assert dag.get_task("process.load").pool == "feedline_warehouse"
    watchers = dag.timetable.asset_condition.watchers
    assert [w.trigger.serialize()[0] for w in watchers] == ["feedline.airflow.triggers.LocalFolderTrigger"]


def test_invalid_feed_is_an_import_error_and_others_still_load(
    airflow_project: Stack, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    bad = GOOD.replace("name: orders", "name: invoices").replace("table: orders", "table: invoices")
    bad = bad.replace("type: decimal(12,2)", "type: decmial")
    project = make_project(tmp_path / "p", {"orders.yaml": GOOD, "invoices.yaml": bad})
    bag = _dagbag(project / "dags", monkeypatch, project)
    assert set(bag.dag_ids) == {"feed_orders", "feedline_monitoring"}
    assert list(bag.import_errors) == [str(project / "dags" / "feed_contracts.py")]
    message = next(iter(bag.import_errors.values()))
    assert "invoices.yaml: columns.amount.type: 'decmial' is not a type; did you mean 'decimal'?" in message


def test_sensor_mode_dag(airflow_project: Stack, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    sensed = GOOD.replace("trigger: watcher", "trigger: sensor")
    project = make_project(tmp_path / "p", {"orders.yaml": sensed})
    dag = _dagbag(project / "dags", monkeypatch, project).get_dag("feed_orders")
    sensor = dag.get_task("ingest.wait_for_file")
    assert sensor.deferrable is True
    assert sensor.filepath == str(project / "data" / "landing" / "orders" / "*.csv*")
    assert dag.get_task("ingest.discover").trigger_rule == "none_failed"


S3_FEED = GOOD.replace("uri: data/landing/orders", "uri: s3://raw-bucket/orders/")


def test_s3_feed_is_woken_by_sqs_events(
    airflow_project: Stack, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    project = make_project(tmp_path / "p", {"orders.yaml": S3_FEED})
    monkeypatch.setenv("FEEDLINE_SQS_QUEUE", "https://sqs.eu-west-1.amazonaws.com/123456789012/raw-events")
    dag = _dagbag(project / "dags", monkeypatch, project).get_dag("feed_orders")
    (watcher,) = dag.timetable.asset_condition.watchers
    classpath, kwargs = watcher.trigger.serialize()
    assert classpath == "airflow.providers.amazon.aws.triggers.sqs.SqsSensorTrigger"
    assert kwargs["sqs_queue"].endswith("/raw-events")
    assert kwargs["waiter_delay"] == 1  # not the 60 s default: an event must wake the feed within seconds


def test_s3_feed_in_sensor_mode_uses_a_deferrable_s3_key_sensor(
    airflow_project: Stack, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    project = make_project(
        tmp_path / "p", {"orders.yaml": S3_FEED.replace("trigger: watcher", "trigger: sensor")}
    )
    dag = _dagbag(project / "dags", monkeypatch, project).get_dag("feed_orders")
    sensor = dag.get_task("ingest.wait_for_file")
    assert type(sensor).__name__ == "S3KeySensor"
    assert sensor.deferrable is True
    assert sensor.wildcard_match is True
    assert sensor.bucket_key == "s3://raw-bucket/orders/*.csv*"
