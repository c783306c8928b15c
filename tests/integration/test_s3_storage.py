"""S3Storage against a real moto server over HTTP: bytes in the bucket, multipart, moves, errors."""

from __future__ import annotations

import hashlib
import json
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config

from feedline.errors import TerminalError, TransientError, UnsafeKeyError
from feedline.storage import (
    BucketNotFoundError,
    LocalStorage,
    ObjectNotFoundError,
    S3Storage,
    open_storage,
)

MB = 1024 * 1024


@pytest.fixture(scope="module")
def s3(moto_endpoint: str) -> Any:
    return boto3.client("s3")


@pytest.fixture
def bucket(s3: Any, request: pytest.FixtureRequest) -> Iterator[str]:
    name = "feedline-" + hashlib.sha1(request.node.name.encode()).hexdigest()[:12]
    s3.create_bucket(Bucket=name)
    yield name
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=name):
        for obj in page.get("Contents", ()):
            s3.delete_object(Bucket=name, Key=obj["Key"])
    s3.delete_bucket(Bucket=name)


def body(s3: Any, bucket: str, key: str) -> bytes:
    data: bytes = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    return data


def bucket_keys(s3: Any, bucket: str) -> list[str]:
    return sorted(o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", ()))


def test_list_under_the_prefix_only(s3: Any, bucket: str) -> None:
    for key in (
        "feed/a.csv",
        "feed/b.csv.gz",
        "feed/2024/01/c.csv",
        "feed/x.json",
        "feed/dir/",
        "feed/up.csv.part",
        "feed/.hidden.csv",
        "feed/.tmp/d.csv",
        "feedX/e.csv",
        "other/f.csv",
    ):
        s3.put_object(Bucket=bucket, Key=key, Body=key.encode())
    storage = open_storage(f"s3://{bucket}/feed")
    found = {o.key: o for o in storage.list("*.csv*")}
    assert sorted(found) == ["2024/01/c.csv", "a.csv", "b.csv.gz"]
    head = s3.head_object(Bucket=bucket, Key="feed/a.csv")
    assert found["a.csv"].identity == "etag:" + head["ETag"].strip('"')
    assert found["a.csv"].identity == "etag:" + hashlib.md5(b"feed/a.csv").hexdigest()
    assert found["a.csv"].size == len(b"feed/a.csv")
    assert found["a.csv"].mtime == head["LastModified"].timestamp()
    assert [o.key for o in storage.list("2024/**/*.csv")] == ["2024/01/c.csv"]
    assert storage.info("a.csv") == found["a.csv"]


def test_list_paginates(s3: Any, bucket: str, monkeypatch: pytest.MonkeyPatch) -> None:
    for i in range(7):
        s3.put_object(Bucket=bucket, Key=f"p/{i}.csv", Body=b"x")
    storage = S3Storage(f"s3://{bucket}/p/")
    monkeypatch.setattr(storage, "page_size", 2)
    assert [o.key for o in storage.list()] == [f"{i}.csv" for i in range(7)]


def test_write_open_download_delete_exists(s3: Any, bucket: str, tmp_path: Path) -> None:
    storage = open_storage(f"s3://{bucket}/lake/processed/")
    url = storage.write_bytes("orders/part-0.parquet", b"PAR1 data")
    assert url == f"s3://{bucket}/lake/processed/orders/part-0.parquet"
    assert body(s3, bucket, "lake/processed/orders/part-0.parquet") == b"PAR1 data"
    assert storage.exists("orders/part-0.parquet")
    with storage.open("orders/part-0.parquet") as reader:
        assert reader.read(4) == b"PAR1"
        assert reader.read() == b" data"
    dest = storage.download("orders/part-0.parquet", tmp_path / "nested" / "copy.parquet")
    assert dest.read_bytes() == b"PAR1 data"
    assert storage.local_path("orders/part-0.parquet") is None
    storage.delete("orders/part-0.parquet")
    storage.delete("orders/part-0.parquet")
    assert not storage.exists("orders/part-0.parquet")
    assert bucket_keys(s3, bucket) == []


def test_large_upload_is_multipart_and_round_trips(s3: Any, bucket: str, tmp_path: Path) -> None:
    data = os.urandom(9 * MB + 17)
    src = tmp_path / "big.csv"
    src.write_bytes(data)
    storage = S3Storage(f"s3://{bucket}/in/")
    storage.upload(src, "big.csv")
    info = storage.info("big.csv")
    assert info is not None
    assert info.size == len(data)
    assert info.identity.endswith("-2"), "a 9 MB upload goes in two parts (ETag <md5>-2)"
    assert body(s3, bucket, "in/big.csv") == data
    assert storage.download("big.csv", tmp_path / "back.csv").read_bytes() == data
    sha = hashlib.sha256()
    with storage.open("big.csv") as reader:
        while chunk := reader.read(MB):
            sha.update(chunk)
    assert sha.hexdigest() == hashlib.sha256(data).hexdigest()


@pytest.mark.parametrize(
    "key", ["with space.csv", "ünïcødé/数据.csv", "a%2Fb.csv", "plus+sign.csv", "x=1&y=2.csv"]
)
def test_unusual_keys_are_literal(s3: Any, bucket: str, key: str) -> None:
    storage = S3Storage(f"s3://{bucket}/in/")
    storage.write_bytes(key, b"v")
    assert bucket_keys(s3, bucket) == [f"in/{key}"]
    assert [o.key for o in storage.list()] == [key]
    with storage.open(key) as reader:
        assert reader.read() == b"v"


def test_move_within_s3(s3: Any, bucket: str) -> None:
    landing = S3Storage(f"s3://{bucket}/landing/")
    archive = S3Storage(f"s3://{bucket}/archive/")
    landing.write_bytes("a.csv", b"one")
    assert landing.move("a.csv", archive, "2024/a.csv") == f"s3://{bucket}/archive/2024/a.csv"
    assert bucket_keys(s3, bucket) == ["archive/2024/a.csv"]
    assert body(s3, bucket, "archive/2024/a.csv") == b"one"

    landing.write_bytes("a.csv", b"one")
    assert landing.move("a.csv", archive, "2024/a.csv") == f"s3://{bucket}/archive/2024/a.csv"
    assert bucket_keys(s3, bucket) == ["archive/2024/a.csv"], "same content: the source is just deleted"

    landing.write_bytes("a.csv", b"two")
    tag = hashlib.md5(b"two").hexdigest()[:12]
    assert landing.move("a.csv", archive, "2024/a.csv") == f"s3://{bucket}/archive/2024/a.{tag}.csv"
    assert body(s3, bucket, "archive/2024/a.csv") == b"one"
    assert body(s3, bucket, f"archive/2024/a.{tag}.csv") == b"two"
    assert bucket_keys(s3, bucket) == sorted(["archive/2024/a.csv", f"archive/2024/a.{tag}.csv"])
    with pytest.raises(ObjectNotFoundError, match="no such object"):
        landing.move("a.csv", archive, "a.csv")


def test_move_between_s3_and_a_folder(s3: Any, bucket: str, tmp_path: Path) -> None:
    remote = S3Storage(f"s3://{bucket}/landing/")
    folder = LocalStorage(tmp_path / "archive")
    remote.write_bytes("a.csv", b"payload")
    assert remote.move("a.csv", folder, "x/a.csv") == str(folder.root / "x/a.csv")
    assert (folder.root / "x/a.csv").read_bytes() == b"payload"
    assert bucket_keys(s3, bucket) == []
    assert folder.move("x/a.csv", remote, "back/a.csv") == f"s3://{bucket}/landing/back/a.csv"
    assert body(s3, bucket, "landing/back/a.csv") == b"payload"
    assert not (folder.root / "x/a.csv").exists()


@pytest.mark.parametrize(
    "key", ["../other/x.csv", "/landing/x.csv", "a/../../x.csv", "a\\x.csv", "./x.csv", ""]
)
def test_unsafe_keys_never_reach_s3(s3: Any, bucket: str, tmp_path: Path, key: str) -> None:
    storage = S3Storage(f"s3://{bucket}/landing/")
    s3.put_object(Bucket=bucket, Key="other/x.csv", Body=b"keep")
    src = tmp_path / "src.csv"
    src.write_bytes(b"evil")
    for call in (
        lambda: storage.write_bytes(key, b"evil"),
        lambda: storage.upload(src, key),
        lambda: storage.open(key),
        lambda: storage.delete(key),
        lambda: storage.exists(key),
        lambda: storage.download(key, tmp_path / "d"),
    ):
        with pytest.raises(UnsafeKeyError, match=f"s3://{bucket}/landing/"):
            call()
    assert bucket_keys(s3, bucket) == ["other/x.csv"]
    assert body(s3, bucket, "other/x.csv") == b"keep"


def test_missing_bucket_and_object_are_terminal(bucket: str, tmp_path: Path) -> None:
    gone = S3Storage("s3://feedline-no-such-bucket/in/")
    with pytest.raises(BucketNotFoundError, match=r"feedline-no-such-bucket.*create it"):
        list(gone.list())
    with pytest.raises(BucketNotFoundError):
        gone.write_bytes("a.csv", b"x")
    with pytest.raises(TerminalError):
        gone.upload(Path(__file__), "a.csv")
    storage = S3Storage(f"s3://{bucket}/in/")
    with pytest.raises(ObjectNotFoundError, match=f"s3://{bucket}/in/nope.csv"):
        storage.open("nope.csv")
    with pytest.raises(ObjectNotFoundError):
        storage.download("nope.csv", tmp_path / "nope.csv")
    assert storage.info("nope.csv") is None


def test_unreachable_server_is_transient(moto_endpoint: str) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    client = boto3.client(
        "s3",
        endpoint_url=f"http://127.0.0.1:{port}",
        config=Config(retries={"max_attempts": 1, "mode": "standard"}, connect_timeout=1, read_timeout=1),
    )
    storage = S3Storage("s3://bucket/in/", client=client)
    started = time.monotonic()
    with pytest.raises(TransientError, match="cannot reach S3"):
        list(storage.list())
    with pytest.raises(TransientError):
        storage.write_bytes("a.csv", b"x")
    assert time.monotonic() - started < 10


@pytest.mark.airflow
def test_credentials_from_an_airflow_connection(
    s3: Any, bucket: str, moto_endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AWS_ENDPOINT_URL")
    monkeypatch.setenv(
        "AIRFLOW_CONN_FEEDLINE_S3_TEST",
        json.dumps(
            {
                "conn_type": "aws",
                "login": "testing",
                "password": "testing",
                "extra": {"endpoint_url": moto_endpoint, "region_name": "us-east-1"},
            }
        ),
    )
    storage = open_storage(f"s3://{bucket}/via-conn/", aws_conn_id="feedline_s3_test")
    storage.write_bytes("a.csv", b"through the connection")
    assert body(s3, bucket, "via-conn/a.csv") == b"through the connection"
    assert storage.client.meta.endpoint_url == moto_endpoint
