"""The AWS Lambda entry point: a thin wrapper around `feedline.transform.objects.transform_object`."""

from __future__ import annotations

from typing import Any

EVENT_KEYS = ("feed", "file_id", "source_uri", "key", "processed_uri", "quarantine_uri")


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Transform one raw object into clean and rejected Parquet; return the metrics and output URIs.

    Errors are raised as they are: Lambda reports the class name as `errorType` (`BadFileError`,
    `TransientError`, …), which is how the caller tells a terminal failure from a transient one.
    """
    import tempfile
    from pathlib import Path

    from feedline.contract import parse_feed
    from feedline.errors import TerminalError
    from feedline.storage import open_storage
    from feedline.transform.objects import transform_object

    missing = [k for k in EVENT_KEYS if not isinstance(event, dict) or k not in event]
    if missing:
        raise TerminalError(
            f"the transform event lacks {', '.join(missing)}; send all of {', '.join(EVENT_KEYS)}"
        )
    raw = event["feed"]
    feed = parse_feed(raw, f"feed {raw.get('name') if isinstance(raw, dict) else raw!r} in the event")
    return transform_object(
        feed,
        open_storage(event["source_uri"]),
        event["key"],
        open_storage(event["processed_uri"]),
        open_storage(event["quarantine_uri"]),
        event["file_id"],
        workdir=Path(tempfile.gettempdir()),
    )
