"""The error model: every foreign error lands in one family, every message says what to do."""

from __future__ import annotations

import errno

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError

from feedline.errors import BadFileError, TerminalError, TransientError, classify, failure_message


def _client_error(code: str, status: int) -> ClientError:
    response = {"Error": {"Code": code, "Message": code}, "ResponseMetadata": {"HTTPStatusCode": status}}
    return ClientError(response, "PutMetricData")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("exc", "family"),
    [
        (BadFileError("x"), TerminalError),
        (TransientError("x"), TransientError),
        (PermissionError(13, "denied"), TerminalError),
        (ConnectionResetError(104, "reset"), TransientError),
        (TimeoutError("slow"), TransientError),
        (OSError(errno.ENOSPC, "No space left on device"), TransientError),
        (_client_error("SlowDown", 503), TransientError),
        (_client_error("AccessDenied", 403), TerminalError),
        (EndpointConnectionError(endpoint_url="http://127.0.0.1:1"), TransientError),
    ],
)
def test_classify(exc: BaseException, family: type[Exception]) -> None:
    assert isinstance(classify(exc), family)


def test_unknown_errors_are_not_classified() -> None:
    assert classify(KeyError("x")) is None
    assert classify(OSError(errno.EIO, "I/O error")) is None


def test_failure_messages_name_feed_file_cause_and_action() -> None:
    bad = failure_message("orders", "a.csv", "transform", BadFileError("a.csv is not valid UTF-8"))
    assert bad.startswith("transform of orders/a.csv failed: a.csv is not valid UTF-8 — once the file")
    assert "feedline replay --feed orders --file a.csv" in bad

    lost = failure_message("orders", "b.csv", "load", ConnectionResetError(104, "reset by peer"))
    assert "load of orders/b.csv failed: ConnectionResetError:" in lost
    assert "retried with backoff" in lost and "--state failed" in lost

    bug = failure_message("orders", "c.csv", "load", KeyError("clean_uri"))
    assert "KeyError: 'clean_uri'" in bug and "--state failed" in bug
