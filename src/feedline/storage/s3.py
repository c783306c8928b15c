"""An s3://bucket/prefix/ as a storage root, through boto3 (imported lazily), with errors translated."""

from __future__ import annotations

import io
import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any, BinaryIO

from feedline.errors import FeedlineError, TerminalError, TransientError
from feedline.storage.base import (
    BucketNotFoundError,
    ObjectInfo,
    ObjectNotFoundError,
    Storage,
    StorageAccessError,
    check_key,
    in_hidden_dir,
    is_ignored,
    literal_prefix,
    match_key,
)

log = logging.getLogger(__name__)

CHUNK = 1 << 20
SINGLE_COPY_LIMIT = 5 * 1024**3
TRANSIENT_CODES = frozenset(
    {
        "SlowDown",
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "RequestThrottled",
        "TooManyRequestsException",
        "RequestLimitExceeded",
        "RequestTimeout",
        "RequestTimeoutException",
        "InternalError",
        "ServiceUnavailable",
        "OperationAborted",
        "ExpiredToken",
        "RequestExpired",
    }
)
ACCESS_CODES = frozenset(
    {
        "AccessDenied",
        "403",
        "Forbidden",
        "AllAccessDisabled",
        "InvalidAccessKeyId",
        "SignatureDoesNotMatch",
        "AccountProblem",
        "InvalidToken",
    }
)
MISSING_CODES = frozenset({"NoSuchKey", "404", "NotFound"})


def translate_error(exc: BaseException, action: str, where: str) -> FeedlineError | None:
    """The feedline error for a boto3 / botocore / s3transfer failure, or None if `exc` is not one.

    The one place where S3 failures are classified: throttling, 5xx and connection problems are
    transient (retry); a missing bucket or object, denied access and other 4xx answers are terminal.
    """
    from botocore.exceptions import (
        BotoCoreError,
        ClientError,
        ConnectionError,
        HTTPClientError,
        IncompleteReadError,
        NoCredentialsError,
        PartialCredentialsError,
    )

    cause = _aws_cause(exc, (ClientError, BotoCoreError))
    fail = f"cannot {action} {where}"
    if isinstance(cause, ClientError):
        error = cause.response.get("Error", {})
        code = str(error.get("Code", ""))
        message = error.get("Message") or code
        status = int(cause.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
        said = f"{code or status}: {message}"
        if code in TRANSIENT_CODES or status == 429 or status >= 500:
            return TransientError(f"{fail}: S3 is throttling or unavailable ({said}); retrying may help")
        if code == "NoSuchBucket":
            return BucketNotFoundError(
                f"{fail}: the bucket does not exist; create it or fix the feed's source.uri / FEEDLINE_LAKE"
            )
        if code in MISSING_CODES:
            return ObjectNotFoundError(f"{fail}: no such object (moved or deleted already?)")
        if code in ACCESS_CODES or status == 403:
            return StorageAccessError(
                f"{fail}: access denied ({said}); grant the role access to this bucket/prefix or fix the AWS "
                "connection's credentials"
            )
        return TerminalError(f"{fail}: S3 refused the request ({said})")
    if isinstance(cause, NoCredentialsError | PartialCredentialsError):
        return TerminalError(
            f"{fail}: no usable AWS credentials ({cause}); set an Airflow AWS connection "
            "(aws_conn_id) or AWS_ACCESS_KEY_ID/AWS_PROFILE"
        )
    if isinstance(cause, ConnectionError | HTTPClientError | IncompleteReadError):
        return TransientError(f"{fail}: cannot reach S3 ({cause}); retrying may help")
    if isinstance(cause, BotoCoreError):
        return TerminalError(f"{fail}: {type(cause).__name__}: {cause}")
    if type(exc).__module__.split(".")[0] in ("boto3", "s3transfer"):
        return TransientError(f"{fail}: {type(exc).__name__}: {exc}")
    return None


def _aws_cause(exc: BaseException, kinds: tuple[type[BaseException], ...]) -> BaseException | None:
    """The botocore error behind `exc`: boto3's transfer errors wrap it (`last_exception`, chaining)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, kinds):
            return current
        seen.add(id(current))
        current = getattr(current, "last_exception", None) or current.__cause__ or current.__context__
    return None


@contextmanager
def _translated(action: str, where: str) -> Iterator[None]:
    try:
        yield
    except FeedlineError:
        raise
    except Exception as exc:
        error = translate_error(exc, action, where)
        if error is None:
            raise
        raise error from exc


class _BodyReader(io.RawIOBase):
    """A raw stream over a botocore StreamingBody whose failures mid-read are translated too."""

    def __init__(self, body: Any, where: str) -> None:
        self._body = body
        self._where = where

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        with _translated("read", self._where):
            data = self._body.read(len(view))
        view[: len(data)] = data
        return len(data)

    def close(self) -> None:
        if not self.closed:
            self._body.close()
        super().close()


class S3Storage(Storage):
    """Objects under `s3://bucket/prefix/`; keys are relative to the prefix.

    The client is built on first use: from the Airflow connection `aws_conn_id` if given, else from
    boto3's default chain (env, profile, instance role), honouring `endpoint_url` or AWS_ENDPOINT_URL.
    Objects are complete once visible (S3 publishes an object only when its upload finishes).
    """

    page_size = 1000

    def __init__(
        self, uri: str, *, client: Any = None, aws_conn_id: str | None = None, endpoint_url: str | None = None
    ) -> None:
        if not uri.startswith("s3://"):
            raise TerminalError(f"{uri!r} is not an s3://bucket/prefix/ URI")
        bucket, _, prefix = uri.removeprefix("s3://").partition("/")
        if not bucket:
            raise TerminalError(f"{uri!r} has no bucket; use s3://bucket/prefix/")
        prefix = prefix.strip("/")
        if prefix:
            check_key(prefix, f"s3://{bucket}")
        self.bucket = bucket
        self.prefix = f"{prefix}/" if prefix else ""
        self.uri = f"s3://{bucket}/{self.prefix}"
        self._client = client
        self._aws_conn_id = aws_conn_id
        self._endpoint_url = endpoint_url
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"S3Storage({self.uri!r})"

    @property
    def client(self) -> Any:
        """The boto3 S3 client, created on first use (boto3 is not imported before)."""
        with self._lock:
            if self._client is None:
                with _translated("connect to", self.uri):
                    self._client = self._make_client()
            return self._client

    def _make_client(self) -> Any:
        if self._aws_conn_id:
            from airflow.providers.amazon.aws.hooks.s3 import S3Hook

            return S3Hook(aws_conn_id=self._aws_conn_id).get_conn()
        import boto3
        from botocore.config import Config

        return boto3.session.Session().client(
            "s3", endpoint_url=self._endpoint_url, config=Config(retries={"mode": "standard"})
        )

    def full_key(self, key: str) -> str:
        """The bucket key of a relative key, after checking it cannot leave the prefix."""
        return self.prefix + check_key(key, self.uri)

    def url(self, key: str) -> str:
        return f"s3://{self.bucket}/{self.full_key(key)}"

    def list(self, pattern: str = "*") -> Iterator[ObjectInfo]:
        paginator = self.client.get_paginator("list_objects_v2")
        pages = paginator.paginate(
            Bucket=self.bucket,
            Prefix=self.prefix + literal_prefix(pattern),
            PaginationConfig={"PageSize": self.page_size},
        )
        with _translated("list", self.uri):
            for page in pages:
                for obj in page.get("Contents", ()):
                    key = obj["Key"][len(self.prefix) :]
                    if not key or key.endswith("/") or is_ignored(key) or in_hidden_dir(key):
                        continue
                    try:
                        check_key(key, self.uri)
                    except TerminalError as exc:
                        log.warning("skipping %s", exc)
                        continue
                    if match_key(key, pattern):
                        yield _object_info(key, obj["Size"], obj["LastModified"], obj["ETag"])

    def info(self, key: str) -> ObjectInfo | None:
        url = self.url(key)
        try:
            with _translated("inspect", url):
                head = self.client.head_object(Bucket=self.bucket, Key=self.full_key(key))
        except ObjectNotFoundError:
            return None
        return _object_info(key, head["ContentLength"], head["LastModified"], head["ETag"])

    def exists(self, key: str) -> bool:
        return self.info(key) is not None

    def open(self, key: str) -> BinaryIO:
        url = self.url(key)
        with _translated("open", url):
            body = self.client.get_object(Bucket=self.bucket, Key=self.full_key(key))["Body"]
        return io.BufferedReader(_BodyReader(body, url), buffer_size=CHUNK)

    def download(self, key: str, dest: Path) -> Path:
        url = self.url(key)
        dest.parent.mkdir(parents=True, exist_ok=True)
        with _translated("download", f"{url} to {dest}"):
            self.client.download_file(self.bucket, self.full_key(key), str(dest))
        return dest

    def upload(self, src: Path, key: str) -> str:
        url = self.url(key)
        with _translated("upload", f"{src} to {url}"):
            self.client.upload_file(str(src), self.bucket, self.full_key(key))
        return url

    def write_bytes(self, key: str, data: bytes) -> str:
        url = self.url(key)
        with _translated("write", url):
            self.client.put_object(Bucket=self.bucket, Key=self.full_key(key), Body=data)
        return url

    def delete(self, key: str) -> None:
        url = self.url(key)
        with _translated("delete", url):
            self.client.delete_object(Bucket=self.bucket, Key=self.full_key(key))

    def _move_to(self, key: str, dest: Storage, dest_key: str) -> bool:
        """Server-side copy (one request up to 5 GB, a multipart copy above), then delete the source."""
        if not isinstance(dest, S3Storage):
            return super()._move_to(key, dest, dest_key)
        from boto3.s3.transfer import TransferConfig

        source = {"Bucket": self.bucket, "Key": self.full_key(key)}
        with _translated("copy", f"{self.url(key)} to {dest.url(dest_key)}"):
            dest.client.copy(
                source,
                dest.bucket,
                dest.full_key(dest_key),
                SourceClient=self.client,
                Config=TransferConfig(multipart_threshold=SINGLE_COPY_LIMIT),
            )
        self.delete(key)
        return True


def _object_info(key: str, size: int, modified: datetime, etag: str) -> ObjectInfo:
    return ObjectInfo(key=key, size=int(size), mtime=modified.timestamp(), identity="etag:" + etag.strip('"'))
