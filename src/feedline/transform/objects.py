"""The transform between lake objects: raw object in, clean and rejected Parquet objects out.

This is the one entry point every runtime shares — the in-process task, `feedline run` and the AWS
Lambda handler — so nothing about the transform forks per profile.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from feedline.contract import Feed
from feedline.errors import FeedlineError
from feedline.transform.run import transform_file

if TYPE_CHECKING:
    from feedline.storage import Storage


def clean_key(file_id: str) -> str:
    """Where a file's clean Parquet lives in the processed area."""
    return f"{file_id}.parquet"


def rejected_key(file_id: str) -> str:
    """Where a file's rejected rows live in the quarantine area."""
    return f"rows/{file_id}.parquet"


def transform_object(
    feed: Feed,
    source: Storage,
    key: str,
    processed: Storage,
    quarantine: Storage,
    file_id: str,
    *,
    workdir: Path | None = None,
) -> dict[str, Any]:
    """Transform `source/key`; write the outputs to the lake and return their URIs and the metrics.

    A local source is read in place; an S3 object is downloaded to `workdir` first (streamed to disk,
    so memory stays bounded). Raises `TerminalError` for a file that cannot be read as its contract says;
    its message names the object by its URI, never by the temporary download.
    """
    with tempfile.TemporaryDirectory(prefix=f"{feed.name}-", dir=workdir) as tmp:
        work = Path(tmp)
        raw = source.local_path(key)
        downloaded = raw is None
        if raw is None:
            raw = source.download(key, work / "raw" / Path(key).name)
        clean, rejected = work / "clean.parquet", work / "rejected.parquet"
        try:
            result = transform_file(feed, raw, clean, rejected)
        except FeedlineError as exc:
            renamed = _naming(exc, raw, source.url(key)) if downloaded else exc
            if renamed is exc:
                raise
            raise renamed from exc
        clean_uri = processed.upload(clean, clean_key(file_id))
        rejected_uri = quarantine.upload(rejected, rejected_key(file_id)) if result.rows_rejected else None
    return {
        "file_id": file_id,
        "clean_key": clean_key(file_id),
        "clean_uri": clean_uri,
        "rejected_uri": rejected_uri,
        **result.to_dict(),
    }


def _naming(exc: FeedlineError, path: Path, uri: str) -> FeedlineError:
    """The same error, naming the object `uri` where it named its temporary copy `path`."""
    if str(path) not in str(exc):
        return exc
    try:
        return type(exc)(str(exc).replace(str(path), uri))
    except TypeError:  # an error class with a constructor of its own: keep it as it is
        return exc
