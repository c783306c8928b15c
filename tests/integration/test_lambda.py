"""The transform Lambda zip run by the real awslambdaric bootstrap behind a local Invoke API, S3 on moto."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path
from typing import Any

import boto3
import polars as pl
import pytest
import yaml

from feedline.contract import parse_feed
from feedline.sample import write_orders_csv
from lambda_support import REPO, LambdaBuild, LambdaEmulator

RAW_FEED = yaml.safe_load((REPO / "feeds" / "orders.yaml").read_text())
FEED = parse_feed({**RAW_FEED, "source": {**RAW_FEED["source"], "uri": "s3://raw/orders/"}}, "orders.yaml")
BUCKETS = ("raw", "processed", "quarantine")


@pytest.fixture(scope="module")
def s3(moto_endpoint: str) -> Any:
    client = boto3.client("s3")
    for name in BUCKETS:
        client.create_bucket(Bucket=name)
    return client


def event(key: str, file_id: str) -> dict[str, Any]:
    return {
        "feed": FEED.model_dump(mode="json", by_alias=True),
        "file_id": file_id,
        "source_uri": "s3://raw/orders/",
        "key": key,
        "processed_uri": "s3://processed/orders/",
        "quarantine_uri": "s3://quarantine/orders/",
    }


def invoke(function: LambdaEmulator, payload: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    client = boto3.client("lambda", endpoint_url=function.endpoint)
    response = client.invoke(FunctionName=function.name, Payload=json.dumps(payload).encode())
    return response, json.loads(response["Payload"].read())


def parquet(s3: Any, bucket: str, key: str) -> pl.DataFrame:
    return pl.read_parquet(io.BytesIO(s3.get_object(Bucket=bucket, Key=key)["Body"].read()))


def test_the_zip_holds_the_handler_and_no_more_than_it_needs(lambda_build: LambdaBuild) -> None:
    with zipfile.ZipFile(REPO / "dist" / "lambda" / "feedline-transform-x86_64.zip") as zf:
        infos = zf.infolist()
    names = {i.filename for i in infos}
    tops = {n.split("/")[0] for n in names}
    assert {"handler.py", "feedline", "polars", "pydantic", "pydantic_core", "yaml"} <= tops
    assert not tops & {"boto3", "botocore", "pyarrow", "duckdb", "airflow", "pandas"}
    assert {n.split("/")[1] for n in names if n.startswith("feedline/")} == {
        "__init__.py",
        "errors.py",
        "contract.py",
        "settings.py",
        "storage",
        "transform",
        "quality",
        "__pycache__",
    }
    assert {n for n in names if n.startswith("feedline/quality/") and n.endswith(".py")} == {
        "feedline/quality/__init__.py",
        "feedline/quality/spec.py",
    }
    assert {i.date_time for i in infos} == {(1980, 1, 1, 0, 0, 0)}
    assert [i.filename for i in infos] == sorted(i.filename for i in infos)
    assert sum(i.file_size for i in infos) < 250 * 1024**2


def test_good_file_gives_clean_and_rejected_parquet_in_s3(
    lambda_function: LambdaEmulator, s3: Any, tmp_path: Path
) -> None:
    stats = write_orders_csv(tmp_path / "a.csv", rows=500, seed=7)
    s3.upload_file(str(tmp_path / "a.csv"), "raw", "orders/2024/a.csv")

    response, result = invoke(lambda_function, event("2024/a.csv", "f-good"))

    assert response["StatusCode"] == 200 and "FunctionError" not in response, result
    assert result["rows_in"] == stats.rows
    assert result["rows_rejected"] == stats.bad
    assert result["duplicates_dropped"] == stats.duplicates
    assert result["rows_out"] == stats.rows - stats.bad - stats.duplicates
    assert result["bytes_in"] == stats.bytes
    assert result["clean_uri"] == "s3://processed/orders/f-good.parquet"
    assert result["rejected_uri"] == "s3://quarantine/orders/rows/f-good.parquet"
    clean = parquet(s3, "processed", "orders/f-good.parquet")
    assert clean.height == result["rows_out"]
    assert clean["order_id"].n_unique() == clean.height
    assert set(clean.columns) >= {c.name for c in FEED.columns}
    rejected = parquet(s3, "quarantine", "orders/rows/f-good.parquet")
    assert rejected.height == stats.bad
    assert any("reason" in c for c in rejected.columns)


def test_bad_file_is_a_function_error_named_bad_file_error(lambda_function: LambdaEmulator, s3: Any) -> None:
    s3.put_object(Bucket="raw", Key="orders/bad.csv", Body=b"order_id,amount\n1,2.00\n")

    response, error = invoke(lambda_function, event("bad.csv", "f-bad"))

    assert response["StatusCode"] == 200
    assert response["FunctionError"] == "Unhandled"
    assert error["errorType"] == "BadFileError"
    assert error["errorMessage"].startswith("s3://raw/orders/bad.csv: header lacks required column(s)")
    assert "customer_email" in error["errorMessage"]
    assert any("transform" in line for line in error["stackTrace"])
    assert "Contents" not in s3.list_objects_v2(Bucket="processed", Prefix="orders/f-bad")


def test_incomplete_event_and_missing_object_are_terminal_errors(lambda_function: LambdaEmulator) -> None:
    _, error = invoke(lambda_function, {"file_id": "x"})
    assert error["errorType"] == "TerminalError"
    assert "feed" in error["errorMessage"] and "source_uri" in error["errorMessage"]

    _, error = invoke(lambda_function, event("nowhere.csv", "f-none"))
    assert error["errorType"] == "ObjectNotFoundError"
    assert "s3://raw/orders/nowhere.csv" in error["errorMessage"]


def test_warm_invocations_reuse_one_runtime_and_unknown_functions_are_404(
    lambda_function: LambdaEmulator,
) -> None:
    invoke(lambda_function, {})
    starts = lambda_function.starts
    for _ in range(3):
        invoke(lambda_function, {})
    assert lambda_function.starts == starts == 1, lambda_function.logs()
    client = boto3.client("lambda", endpoint_url=lambda_function.endpoint)
    with pytest.raises(client.exceptions.ResourceNotFoundException):
        client.invoke(FunctionName="no-such-function", Payload=b"{}")


def test_a_timed_out_runtime_is_replaced_for_the_next_invocation(
    lambda_build: LambdaBuild, tmp_path: Path
) -> None:
    (tmp_path / "task").mkdir()
    (tmp_path / "task" / "naps.py").write_text(
        "import time\n\ndef handler(event, context):\n    time.sleep(event['nap'])\n    return event\n"
    )
    build = LambdaBuild(tmp_path / "task", lambda_build.python)
    with LambdaEmulator(build, name="naps", timeout=1.0, tmpdir=tmp_path, handler="naps.handler") as function:
        response, error = invoke(function, {"nap": 5})
        assert response["FunctionError"] == "Unhandled"
        assert error["errorType"] == "Sandbox.Timedout"
        assert "Task timed out after 1.00 seconds" in error["errorMessage"]

        response, result = invoke(function, {"nap": 0})
        assert "FunctionError" not in response
        assert result == {"nap": 0}
        assert function.starts == 2
