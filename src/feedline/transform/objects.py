"""The transform between lake objects: raw object in, clean and rejected Parquet objects out.

This is the one entry point every runtime shares — the in-process task, `feedline run` and the AWS
Lambda handler — so nothing about the transform forks per profile.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from feedline.contract import Feed
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
    so memory stays bounded). Raises `TerminalError` for a file that cannot be read as its contract says.
    """
    with tempfile.TemporaryDirectory(prefix=f"{feed.name}-", dir=workdir) as tmp:
        work = Path(tmp)
        raw = source.local_path(key)
        if raw is None:
            raw = source.download(key, work / "raw" / Path(key).name)
        clean, rejected = work / "clean.parquet", work / "rejected.parquet"
        result = transform_file(feed, raw, clean, rejected)
        clean_uri = processed.upload(clean, clean_key(file_id))
        rejected_uri = quarantine.upload(rejected, rejected_key(file_id)) if result.rows_rejected else None
    return {
        "file_id": file_id,
        "clean_key": clean_key(file_id),
        "clean_uri": clean_uri,
        "rejected_uri": rejected_uri,
        **result.to_dict(),
    }
