"""Storage roots by URI: a local folder (path or file://) or S3 (s3://bucket/prefix/); boto3 loads lazily."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import unquote

from feedline.errors import TerminalError
from feedline.storage.base import (
    BucketNotFoundError,
    ObjectInfo,
    ObjectNotFoundError,
    Storage,
    StorageAccessError,
    check_key,
    is_ignored,
    match_key,
)
from feedline.storage.local import LocalStorage
from feedline.storage.s3 import S3Storage

__all__ = [
    "BucketNotFoundError",
    "LocalStorage",
    "ObjectInfo",
    "ObjectNotFoundError",
    "S3Storage",
    "Storage",
    "StorageAccessError",
    "check_key",
    "is_ignored",
    "match_key",
    "open_storage",
]


def open_storage(uri: str, *, settle_seconds: float = 2.0, aws_conn_id: str | None = None) -> Storage:
    """The storage root at `uri`: `s3://bucket/prefix/`, `file:///abs/path` or a folder path.

    A relative folder resolves against the current directory (resolve feed sources with
    `Settings.source_location` first). `settle_seconds` applies to local folders, `aws_conn_id` to S3.
    """
    if uri.startswith("s3://"):
        return S3Storage(uri, aws_conn_id=aws_conn_id)
    if uri.startswith("file://"):
        return LocalStorage(Path(unquote(uri.removeprefix("file://"))), settle_seconds=settle_seconds)
    if "://" in uri or not uri:
        raise TerminalError(
            f"{uri!r} is not a storage location; use a folder path, file:// or s3://bucket/prefix/"
        )
    return LocalStorage(Path(uri), settle_seconds=settle_seconds)
