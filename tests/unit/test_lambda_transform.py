"""How an invocation's answer becomes a result or a feedline error (no Airflow needed)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError, NoCredentialsError, ReadTimeoutError

from feedline.airflow.lambda_transform import (
    function_failure,
    read_response,
    transform_event,
    translate_invoke_error,
)
from feedline.contract import load_feed, parse_feed
from feedline.errors import BadFileError, ContractError, TerminalError, TransientError
from feedline.storage import ObjectNotFoundError
from feedline.transform import InvariantError

REPO = Path(__file__).resolve().parents[2]
WHERE = "Lambda function t on s3://b/k.csv"


def error_body(error_type: str, message: str = "boom") -> bytes:
    return json.dumps({"errorType": error_type, "errorMessage": message, "stackTrace": []}).encode()


def test_the_event_carries_the_feed_as_json_that_parses_back() -> None:
    feed = load_feed(REPO / "feeds" / "orders.yaml")
    event = transform_event(
        feed, {"key": "a.csv", "file_id": "f"}, source_uri="s3://b/in/", processed_uri="p", quarantine_uri="q"
    )
    assert parse_feed(json.loads(json.dumps(event))["feed"], "event") == feed
    assert (event["key"], event["file_id"], event["source_uri"]) == ("a.csv", "f", "s3://b/in/")
    # Fields left at their defaults are not sent: a function of an earlier release still reads the event.
    assert "dedupe" not in event["feed"] and event["feed"]["target"] == {
        "table": "orders",
        "mode": "upsert",
        "index_key": True,
    }


def test_a_result_is_returned_as_is() -> None:
    assert read_response(200, None, b'{"file_id": "f", "rows_in": 3}', WHERE) == {
        "file_id": "f",
        "rows_in": 3,
    }


@pytest.mark.parametrize(
    ("error_type", "expected"),
    [
        ("BadFileError", BadFileError),
        ("ContractError", ContractError),
        ("ObjectNotFoundError", ObjectNotFoundError),
        ("InvariantError", InvariantError),
        ("TerminalError", TerminalError),
        ("TransientError", TransientError),
        ("Runtime.ImportModuleError", TerminalError),
        ("AccessDenied", TerminalError),
        ("Sandbox.Timedout", TransientError),
        ("Runtime.ExitError", TransientError),
        ("KeyError", TransientError),
        ("", TransientError),
    ],
)
def test_function_errors_become_feedline_errors(error_type: str, expected: type[Exception]) -> None:
    with pytest.raises(expected) as caught:
        read_response(200, "Unhandled", error_body(error_type, "s3://b/k.csv: header lacks x"), WHERE)
    assert type(caught.value) is expected
    assert str(caught.value).startswith(f"{WHERE} failed: ")
    assert "s3://b/k.csv: header lacks x" in str(caught.value)


def test_status_200_with_function_error_is_never_a_result() -> None:
    with pytest.raises(TransientError, match="not json"):
        read_response(200, "Unhandled", b"not json", WHERE)
    with pytest.raises(TerminalError, match="unexpected answer"):
        read_response(200, None, b'"just a string"', WHERE)


def test_every_terminal_error_class_of_feedline_maps_to_itself() -> None:
    def subclasses(cls: type[Exception]) -> list[type[Exception]]:
        return [cls, *(s for sub in cls.__subclasses__() for s in subclasses(sub))]

    for cls in subclasses(TerminalError):
        if cls.__module__.startswith("feedline."):
            assert type(function_failure(cls.__name__, "m", WHERE)) is cls


def client_error(code: str, status: int) -> ClientError:
    response: Any = {"Error": {"Code": code, "Message": "m"}, "ResponseMetadata": {"HTTPStatusCode": status}}
    return ClientError(response, "Invoke")


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        (client_error("TooManyRequestsException", 429), TransientError),
        (client_error("ServiceException", 500), TransientError),
        (client_error("ResourceConflictException", 409), TransientError),
        (client_error("ResourceNotFoundException", 404), TerminalError),
        (client_error("AccessDeniedException", 403), TerminalError),
        (client_error("RequestTooLargeException", 413), TerminalError),
        (ReadTimeoutError(endpoint_url="http://x"), TransientError),
        (EndpointConnectionError(endpoint_url="http://x"), TransientError),
        (NoCredentialsError(), TerminalError),
    ],
)
def test_invoke_failures_are_translated(exc: Exception, expected: type[Exception]) -> None:
    error = translate_invoke_error(exc, WHERE)
    assert type(error) is expected
    assert str(error).startswith(WHERE)


def test_other_exceptions_are_left_alone() -> None:
    assert translate_invoke_error(ValueError("x"), WHERE) is None
