"""`invoke_transform` through the Airflow AWS connection and LambdaHook to the local Lambda and moto."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import polars as pl
import pytest
import yaml

from feedline.airflow.lambda_transform import invoke_transform
from feedline.contract import parse_feed
from feedline.errors import BadFileError, TerminalError, TransientError
from feedline.sample import write_orders_csv
from feedline.stack import Stack
from lambda_support import REPO, LambdaBuild, LambdaEmulator

pytestmark = pytest.mark.airflow

RAW_FEED = yaml.safe_load((REPO / "feeds" / "orders.yaml").read_text())
FEED = parse_feed(
    {**RAW_FEED, "source": {**RAW_FEED["source"], "uri": "s3://landing/orders/"}}, "orders.yaml"
)
AREAS = {
    "source_uri": "s3://landing/orders/",
    "processed_uri": "s3://lake/processed/orders/",
    "quarantine_uri": "s3://lake/quarantine/orders/",
}
FAULTS = """
import os, time

def sleep(event, context):
    time.sleep(30)

def crash(event, context):
    os._exit(3)
"""


def connection(lambda_endpoint: str, moto_endpoint: str) -> str:
    """An Airflow AWS connection: S3 (and everything else) on moto, Lambda on the local emulator."""
    extra = {
        "region_name": "us-east-1",
        "endpoint_url": moto_endpoint,
        "service_config": {"lambda": {"endpoint_url": lambda_endpoint}},
    }
    return json.dumps({"conn_type": "aws", "login": "testing", "password": "testing", "extra": extra})


@pytest.fixture(scope="module")
def s3(airflow_project: Stack, lambda_function: LambdaEmulator, moto_endpoint: str) -> Iterator[Any]:
    with pytest.MonkeyPatch.context() as env:
        env.setenv("AIRFLOW_CONN_AWS_DEFAULT", connection(lambda_function.endpoint, moto_endpoint))
        env.delenv("AWS_ENDPOINT_URL")  # in this process only the connection says where AWS is
        client = boto3.client("s3", endpoint_url=moto_endpoint)
        for bucket in ("landing", "lake"):
            client.create_bucket(Bucket=bucket)
        yield client


def ref(key: str, file_id: str) -> dict[str, Any]:
    return {"key": key, "file_id": file_id, "version": "etag:x"}


def test_a_file_round_trips_through_the_lambda(s3: Any, tmp_path: Path) -> None:
    stats = write_orders_csv(tmp_path / "o.csv", rows=300, seed=3)
    s3.upload_file(str(tmp_path / "o.csv"), "landing", "orders/o.csv")

    result = invoke_transform(FEED, ref("o.csv", "id-1"), function_name="feedline-transform", **AREAS)

    assert result["file_id"] == "id-1"
    assert (result["rows_in"], result["rows_rejected"]) == (stats.rows, stats.bad)
    assert result["rows_out"] == stats.rows - stats.bad - stats.duplicates
    assert result["clean_uri"] == "s3://lake/processed/orders/id-1.parquet"
    body = s3.get_object(Bucket="lake", Key="processed/orders/id-1.parquet")["Body"].read()
    assert pl.read_parquet(io.BytesIO(body)).height == result["rows_out"]


def test_a_bad_file_is_a_terminal_error_naming_it(s3: Any) -> None:
    s3.put_object(Bucket="landing", Key="orders/bad.csv", Body=b"order_id,amount\n1,2.00\n")

    with pytest.raises(BadFileError) as caught:
        invoke_transform(FEED, ref("bad.csv", "id-2"), function_name="feedline-transform", **AREAS)

    assert isinstance(caught.value, TerminalError)
    message = str(caught.value)
    assert "feedline-transform on s3://landing/orders/bad.csv failed: BadFileError" in message
    assert "customer_email" in message


def test_an_unknown_function_is_terminal(s3: Any) -> None:
    with pytest.raises(TerminalError, match="ResourceNotFoundException"):
        invoke_transform(FEED, ref("o.csv", "id-3"), function_name="no-such-function", **AREAS)


@pytest.mark.parametrize(
    ("handler", "family", "error_type"),
    [
        ("faults.sleep", TransientError, "Sandbox.Timedout"),
        ("faults.crash", TransientError, "Runtime.ExitError"),
        ("nowhere.handler", TerminalError, "Runtime.ImportModuleError"),
    ],
)
def test_runtime_failures_map_to_the_error_families(
    s3: Any,
    lambda_build: LambdaBuild,
    moto_endpoint: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    handler: str,
    family: type[Exception],
    error_type: str,
) -> None:
    (tmp_path / "task").mkdir()
    (tmp_path / "task" / "faults.py").write_text(FAULTS)
    build = LambdaBuild(tmp_path / "task", lambda_build.python)
    with LambdaEmulator(build, name="faults", timeout=1.0, tmpdir=tmp_path, handler=handler) as function:
        monkeypatch.setenv("AIRFLOW_CONN_AWS_FAULTS", connection(function.endpoint, moto_endpoint))
        with pytest.raises(family, match=error_type) as caught:
            invoke_transform(
                FEED, ref("o.csv", "id-4"), function_name="faults", aws_conn_id="aws_faults", **AREAS
            )
    assert type(caught.value) is family


DAG_FILE = """
import datetime

from airflow.sdk import dag, task

from feedline.airflow.lambda_transform import invoke_transform
from feedline.contract import parse_feed


@dag(dag_id="lambda_transform_failure", schedule=None, start_date=datetime.datetime(2024, 1, 1))
def lambda_transform_failure():
    @task(retries=0)
    def transform():
        feed = parse_feed({feed!r}, "test")
        return invoke_transform(feed, {ref!r}, function_name="feedline-transform", **{areas!r})

    transform()


lambda_transform_failure()
"""


def test_a_lambda_function_error_fails_the_airflow_task(
    s3: Any, airflow_project: Stack, lambda_function: LambdaEmulator
) -> None:
    from airflow.dag_processing.dagbag import DagBag

    s3.put_object(Bucket="landing", Key="orders/bad.csv", Body=b"order_id,amount\n1,2.00\n")
    dag_file = airflow_project.project / "dags" / "lambda_transform_failure.py"
    feed = FEED.model_dump(mode="json", by_alias=True)
    dag_file.write_text(DAG_FILE.format(feed=feed, ref=ref("bad.csv", "id-5"), areas=AREAS))
    try:
        bag = DagBag(dag_folder=str(dag_file), safe_mode=False)
        assert bag.import_errors == {}
        run = bag.get_dag("lambda_transform_failure").test()
    finally:
        dag_file.unlink()

    assert run.state == "failed"
    assert run.get_task_instance("transform").state == "failed"
    last = lambda_function.history[-1]  # it failed because the function did
    assert json.loads(last.payload)["file_id"] == "id-5"
    assert last.error and json.loads(last.body)["errorType"] == "BadFileError"
