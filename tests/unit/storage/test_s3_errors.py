"""S3 failures reach callers as terminal or transient feedline errors, classified in one place."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import pytest
from boto3.exceptions import RetriesExceededError, S3UploadFailedError
from botocore.exceptions import ClientError, EndpointConnectionError, NoCredentialsError, ReadTimeoutError
from botocore.stub import Stubber

from feedline.errors import TerminalError, TransientError
from feedline.storage import BucketNotFoundError, ObjectNotFoundError, S3Storage, StorageAccessError
from feedline.storage.s3 import translate_error


def client_error(code: str, status: int, op: str = "GetObject") -> ClientError:
    return ClientError(
        {
            "Error": {"Code": code, "Message": f"{code} says no"},
            "ResponseMetadata": {"HTTPStatusCode": status},
        },
        op,
    )


@pytest.mark.parametrize(
    ("exc", "kind", "text"),
    [
        (client_error("SlowDown", 503), TransientError, "throttling"),
        (client_error("InternalError", 500), TransientError, "retrying may help"),
        (client_error("", 502), TransientError, "502"),
        (client_error("TooManyRequestsException", 429), TransientError, "retrying"),
        (client_error("NoSuchBucket", 404), BucketNotFoundError, "bucket does not exist"),
        (client_error("NoSuchKey", 404), ObjectNotFoundError, "no such object"),
        (client_error("404", 404, "HeadObject"), ObjectNotFoundError, "no such object"),
        (client_error("AccessDenied", 403), StorageAccessError, "access denied"),
        (client_error("InvalidAccessKeyId", 403), StorageAccessError, "credentials"),
        (client_error("KeyTooLongError", 400), TerminalError, "KeyTooLongError"),
        (EndpointConnectionError(endpoint_url="http://127.0.0.1:1"), TransientError, "cannot reach S3"),
        (ReadTimeoutError(endpoint_url="http://s3"), TransientError, "cannot reach S3"),
        (NoCredentialsError(), TerminalError, "aws_conn_id"),
        (RetriesExceededError(ReadTimeoutError(endpoint_url="http://s3")), TransientError, "cannot reach"),
    ],
)
def test_translation(exc: Exception, kind: type[Exception], text: str) -> None:
    error = translate_error(exc, "open", "s3://b/k.csv")
    assert type(error) is kind
    assert "cannot open s3://b/k.csv" in str(error)
    assert text in str(error)


def test_upload_failures_are_unwrapped_from_boto3() -> None:
    def upload() -> None:
        try:
            raise client_error("AccessDenied", 403, "PutObject")
        except ClientError as inner:
            raise S3UploadFailedError(f"Failed to upload: {inner}")  # noqa: B904 - as boto3 does

    with pytest.raises(S3UploadFailedError) as info:
        upload()
    assert isinstance(translate_error(info.value, "upload", "x"), StorageAccessError)


def test_foreign_errors_are_left_alone() -> None:
    assert translate_error(ValueError("x"), "open", "x") is None


@pytest.fixture
def stubbed(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[S3Storage, Stubber]]:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    client: Any = boto3.session.Session().client("s3", region_name="us-east-1")
    with Stubber(client) as stubber:
        yield S3Storage("s3://bucket/feed/", client=client), stubber


def test_list_throttled_is_transient(stubbed: tuple[S3Storage, Stubber]) -> None:
    storage, stubber = stubbed
    stubber.add_client_error("list_objects_v2", "SlowDown", "Please reduce your request rate.", 503)
    with pytest.raises(TransientError, match="cannot list s3://bucket/feed/: S3 is throttling"):
        list(storage.list())


def test_list_filters_and_strips_the_prefix(stubbed: tuple[S3Storage, Stubber]) -> None:
    storage, stubber = stubbed
    when = datetime(2024, 1, 2, tzinfo=UTC)
    names = ("", "dir/", "a.csv", "b.csv.part", ".x.csv", ".tmp/c.csv", "d/../e.csv", "sub/f.csv")
    objects = [{"Key": f"feed/{k}", "Size": 3, "LastModified": when, "ETag": '"abc"'} for k in names]
    stubber.add_response(
        "list_objects_v2",
        {"Contents": objects, "IsTruncated": False},
        {"Bucket": "bucket", "Prefix": "feed/", "MaxKeys": 1000},
    )
    found = list(storage.list("*.csv"))
    assert [(o.key, o.size, o.identity, o.mtime) for o in found] == [
        ("a.csv", 3, "etag:abc", when.timestamp()),
        ("sub/f.csv", 3, "etag:abc", when.timestamp()),
    ]


def test_head_missing_is_none_but_denied_raises(stubbed: tuple[S3Storage, Stubber]) -> None:
    storage, stubber = stubbed
    stubber.add_client_error("head_object", "404", "Not Found", 404)
    stubber.add_client_error("head_object", "403", "Forbidden", 403)
    assert storage.info("a.csv") is None
    with pytest.raises(StorageAccessError, match=r"s3://bucket/feed/a\.csv"):
        storage.exists("a.csv")


def test_get_object_missing_is_terminal(stubbed: tuple[S3Storage, Stubber], tmp_path: Path) -> None:
    storage, stubber = stubbed
    stubber.add_client_error("get_object", "NoSuchKey", "The specified key does not exist.", 404)
    with pytest.raises(ObjectNotFoundError, match=r"cannot open s3://bucket/feed/gone\.csv"):
        storage.open("gone.csv")
