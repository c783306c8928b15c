"""The aws profile end to end, on stand-ins only: a file put into the (moto) raw bucket → S3 event → SQS →
asset watcher → DAG run → transform in the real Lambda runtime → load into PostgreSQL (standing in for
Redshift) → ledger `loaded` — exactly once, even when the same event arrives three times.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from feedline.sample import write_orders_csv
from feedline.stack import Stack, free_port
from lambda_support import LambdaEmulator, build_lambda, runtime_env
from support import REPO, make_project

pytestmark = pytest.mark.e2e

PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/test"


@pytest.fixture(scope="module")
def database() -> Iterator[str]:
    psycopg = pytest.importorskip("psycopg")
    name = f"feedline_e2e_{uuid.uuid4().hex[:8]}"
    try:
        admin = psycopg.connect(PG_ADMIN, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as exc:
        pytest.skip(f"NO POSTGRESQL at 127.0.0.1:5432 — the aws-profile end-to-end test did not run: {exc}")
    admin.execute(f'CREATE DATABASE "{name}"')
    yield f"postgresql://postgres@127.0.0.1:5432/{name}"
    admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
    admin.close()


@pytest.fixture(scope="module")
def moto() -> Iterator[str]:
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


def _client(service: str, endpoint: str) -> Any:
    return boto3.client(
        service,
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


@pytest.fixture(scope="module")
def aws(moto: str) -> dict[str, Any]:
    """Buckets, the event queue and the raw bucket's notification, as the Terraform sets them up."""
    s3, sqs = _client("s3", moto), _client("sqs", moto)
    for bucket in ("raw", "lake"):
        s3.create_bucket(Bucket=bucket)
    queue = sqs.create_queue(QueueName="raw-events")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    s3.put_bucket_notification_configuration(
        Bucket="raw",
        NotificationConfiguration={
            "QueueConfigurations": [
                {
                    "QueueArn": arn,
                    "Events": ["s3:ObjectCreated:*"],
                    "Filter": {"Key": {"FilterRules": [{"Name": "prefix", "Value": "orders/"}]}},
                }
            ]
        },
    )
    sqs.purge_queue(QueueUrl=queue)  # the s3:TestEvent the notification set-up sends
    return {"s3": s3, "sqs": sqs, "queue": queue}


@pytest.fixture(scope="module")
def stack(
    tmp_path_factory: pytest.TempPathFactory, moto: str, aws: dict[str, Any], database: str
) -> Iterator[tuple[Stack, LambdaEmulator]]:
    work = tmp_path_factory.mktemp("aws")
    build = build_lambda(work / "lambda")
    feed = (REPO / "feeds" / "orders.yaml").read_text()
    feed = feed.replace("uri: data/landing/orders", "uri: s3://raw/orders/")
    feed = feed.replace('sweep: "*/30 * * * *"', "sweep: null")  # every run must come from an event
    project = make_project(work / "project", {"orders.yaml": feed})
    with LambdaEmulator(build, env=runtime_env(moto), tmpdir=work) as function:
        aws_conn = {
            "conn_type": "aws",
            "login": "testing",
            "password": "testing",
            "extra": {
                "region_name": "us-east-1",
                "endpoint_url": moto,
                "service_config": {"lambda": {"endpoint_url": function.endpoint}},
            },
        }
        env = {
            "FEEDLINE_PROFILE": "aws",
            "FEEDLINE_PROCESSED": "s3://lake/processed",
            "FEEDLINE_QUARANTINE": "s3://lake/quarantine",
            "FEEDLINE_ARCHIVE": "s3://lake/archive",
            "FEEDLINE_TRANSFORM": "lambda",
            "FEEDLINE_LAMBDA_FUNCTION": function.name,
            "FEEDLINE_SQS_QUEUE": aws["queue"],
            "FEEDLINE_WAREHOUSE_CONN_ID": "feedline_warehouse",
            "AIRFLOW_CONN_AWS_DEFAULT": json.dumps(aws_conn),
            "AIRFLOW_CONN_FEEDLINE_WAREHOUSE": database.replace("postgresql://", "postgres://"),
            "AWS_DEFAULT_REGION": "us-east-1",
        }
        stack = Stack(
            project=project, home=project / ".airflow", port=free_port(), parallelism=2, env_extra=env
        )
        stack.configure()
        stack.migrate()
        stack.start()
        try:
            stack.wait_healthy(timeout=240)
            yield stack, function
        finally:
            stack.stop()


def _sql(database: str, sql: str) -> list[tuple[Any, ...]]:
    import psycopg

    try:
        with psycopg.connect(database) as con:
            return con.execute(sql).fetchall()
    except psycopg.errors.UndefinedTable:
        return []


def _wait(condition: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(1)
    raise AssertionError(f"{what}: not after {timeout:.0f}s")


def test_s3_event_to_lambda_to_postgres_exactly_once(
    stack: tuple[Stack, LambdaEmulator], aws: dict[str, Any], database: str, tmp_path: Path
) -> None:
    airflow, function = stack
    _wait(lambda: bool(airflow.api("GET", "dags?tags=feedline")["dags"]), 120, "feed DAG parsed")  # type: ignore[index]
    stats = write_orders_csv(tmp_path / "one.csv", rows=300, seed=51)
    expected = stats.rows - stats.bad - stats.duplicates
    aws["s3"].upload_file(str(tmp_path / "one.csv"), "raw", "orders/one.csv")

    _wait(
        lambda: _sql(database, "select state from feedline_audit.files") == [("loaded",)],
        240,
        f"orders/one.csv loaded (lambda log: {function.log_path})",
    )
    assert _sql(database, "select count(*), count(distinct order_id) from orders") == [(expected, expected)]
    assert _sql(database, "select rows_in, rows_loaded, rows_rejected from feedline_audit.files") == [
        (stats.rows, expected, stats.bad)
    ]
    assert len(function.history) == 1  # transformed by the Lambda runtime, once

    # The same S3 event delivered three more times wakes the feed; the ledger keeps it a no-op.
    event = {
        "Records": [
            {
                "eventSource": "aws:s3",
                "eventName": "ObjectCreated:Put",
                "s3": {"bucket": {"name": "raw"}, "object": {"key": "orders/one.csv"}},
            }
        ]
    }
    for _ in range(3):
        aws["sqs"].send_message(QueueUrl=aws["queue"], MessageBody=json.dumps(event))

    def settled() -> bool:
        runs = airflow.api("GET", "dags/feed_orders/dagRuns?limit=100")["dag_runs"]  # type: ignore[index]
        return len(runs) >= 2 and all(r["state"] in ("success", "failed") for r in runs)

    _wait(settled, 180, "the duplicate events' runs finished")
    runs = airflow.api("GET", "dags/feed_orders/dagRuns?limit=100")["dag_runs"]  # type: ignore[index]
    assert {(r["run_type"], r["state"]) for r in runs} == {("asset_triggered", "success")}
    assert _sql(database, "select count(*) from orders") == [(expected,)]
    assert _sql(database, "select count(*) from feedline_audit.files") == [(1,)]
    assert len(function.history) == 1

    _wait(
        lambda: "Contents" not in aws["s3"].list_objects_v2(Bucket="raw", Prefix="orders/"),
        60,
        "raw archived",
    )
    archived = aws["s3"].list_objects_v2(Bucket="lake", Prefix="archive/orders/")["Contents"]
    assert [o["Key"] for o in archived] == ["archive/orders/one.csv"]
