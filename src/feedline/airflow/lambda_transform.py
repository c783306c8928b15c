"""Run one file's transform in the AWS Lambda function and read its answer as feedline's errors."""

from __future__ import annotations

import json
import logging
from typing import Any

from feedline.contract import Feed
from feedline.errors import FeedlineError, TerminalError, TransientError

log = logging.getLogger(__name__)

CONNECT_TIMEOUT = 10.0
FEEDLINE_TERMINAL = ("TerminalError", "ContractError", "BadFileError", "UnsafeKeyError", "InvariantError")
STORAGE_TERMINAL = ("ObjectNotFoundError", "BucketNotFoundError", "StorageAccessError")
DEPLOYMENT_BROKEN = (
    "Runtime.ImportModuleError",
    "Runtime.HandlerNotFound",
    "Runtime.UserCodeSyntaxError",
    "Runtime.MalformedHandlerName",
    "Runtime.BuiltInModuleConflict",
)
TERMINAL_TYPES = frozenset({*FEEDLINE_TERMINAL, *STORAGE_TERMINAL, *DEPLOYMENT_BROKEN, "AccessDenied"})
"""errorType values a retry cannot fix: feedline's terminal family (as the handler raises it) and a function
that cannot run as deployed. Any other (timeouts, Runtime.ExitError, throttling, TransientError, an unexpected
exception) is transient: Airflow's retries take it, a bounded number of times."""
TRANSIENT_CODES = frozenset(
    {
        "TooManyRequestsException",
        "ServiceException",
        "ResourceConflictException",
        "ResourceNotReadyException",
        "EC2ThrottledException",
        "EC2UnexpectedException",
        "ENILimitReachedException",
        "SubnetIPAddressLimitReachedException",
        "SnapStartNotReadyException",
        "SnapStartTimeoutException",
        "ThrottlingException",
        "ExpiredTokenException",
    }
)
"""Invoke API error codes worth a retry; other 4xx answers (no such function, access denied, a payload over
6 MB, a bad request) are terminal."""


def transform_event(
    feed: Feed, ref: dict[str, Any], *, source_uri: str, processed_uri: str, quarantine_uri: str
) -> dict[str, Any]:
    """The event lambda/handler.py takes: the feed contract itself, so the function needs no feeds folder."""
    return {
        # Defaults left out: a function not yet redeployed still reads a feed that sets no newer field.
        "feed": feed.model_dump(mode="json", by_alias=True, exclude_defaults=True),
        "file_id": ref["file_id"],
        "source_uri": source_uri,
        "key": ref["key"],
        "processed_uri": processed_uri,
        "quarantine_uri": quarantine_uri,
    }


def invoke_transform(
    feed: Feed,
    ref: dict[str, Any],
    *,
    function_name: str,
    source_uri: str,
    processed_uri: str,
    quarantine_uri: str,
    aws_conn_id: str = "aws_default",
    read_timeout: float = 960,
) -> dict[str, Any]:
    """Transform the file `ref` in the Lambda function `function_name`; return its metrics and output URIs.

    A synchronous invoke whose read timeout outlasts the function's own (900 s at most), without botocore
    retries: a retry re-runs the transform, so Airflow's retries decide. A function error is read from
    `FunctionError` (the status code is 200 either way) and raised as `TerminalError` (bad file, bad
    contract, broken deployment: quarantine) or `TransientError` (timeout, crash, throttling: retry).
    """
    from airflow.providers.amazon.aws.hooks.lambda_function import LambdaHook
    from botocore.config import Config

    event = transform_event(
        feed, ref, source_uri=source_uri, processed_uri=processed_uri, quarantine_uri=quarantine_uri
    )
    config = Config(
        read_timeout=read_timeout,
        connect_timeout=CONNECT_TIMEOUT,
        retries={"max_attempts": 0},
        tcp_keepalive=True,  # NAT gateways drop connections idle for 350 s; a transform may take 15 min
    )
    where = f"Lambda function {function_name} on {source_uri.rstrip('/')}/{ref['key']}"
    hook = LambdaHook(aws_conn_id=aws_conn_id, config=config)
    log.info("Invoking %s (file %s)", where, ref["file_id"])
    try:
        response = hook.invoke_lambda(
            function_name=function_name, invocation_type="RequestResponse", payload=json.dumps(event)
        )
        body = response["Payload"].read()
    except Exception as exc:
        error = translate_invoke_error(exc, where)
        if error is None:
            raise
        raise error from exc
    result = read_response(response.get("StatusCode"), response.get("FunctionError"), body, where)
    if result.get("file_id") != ref["file_id"] or "clean_uri" not in result:
        raise TerminalError(f"{where}: answered for another file or not with transform metrics: {result}")
    log.info(
        "%s: %d rows in, %d out, %d rejected, %d duplicates, %.1f s",
        where,
        result["rows_in"],
        result["rows_out"],
        result["rows_rejected"],
        result["duplicates_dropped"],
        result["seconds"],
    )
    return result


def read_response(status: int | None, function_error: str | None, body: bytes, where: str) -> dict[str, Any]:
    """The handler's result, or the feedline error its failure stands for."""
    try:
        payload = json.loads(body or b"null")
    except ValueError:
        payload = {"errorMessage": body.decode(errors="replace")}
    if function_error:
        error = payload if isinstance(payload, dict) else {"errorMessage": str(payload)}
        raise function_failure(str(error.get("errorType") or ""), str(error.get("errorMessage") or ""), where)
    if status != 200 or not isinstance(payload, dict):
        raise TerminalError(f"{where}: unexpected answer (status {status}): {body[:500]!r}")
    return payload


def function_failure(error_type: str, message: str, where: str) -> FeedlineError:
    """The feedline error for the function's `errorType`: the same class when it is one of feedline's."""
    text = f"{where} failed: {error_type or 'error'}: {message}"
    known = feedline_errors().get(error_type)
    if known is not None and issubclass(known, TerminalError | TransientError):
        try:
            return known(text)
        except TypeError:
            pass
    return TerminalError(text) if error_type in TERMINAL_TYPES else TransientError(text)


def feedline_errors() -> dict[str, type[FeedlineError]]:
    """feedline's error classes by name, as far as they are imported here."""
    import feedline.storage.base  # noqa: F401  (defines the storage errors)

    found: dict[str, type[FeedlineError]] = {}
    todo: list[type[FeedlineError]] = [FeedlineError]
    while todo:
        cls = todo.pop()
        found.setdefault(cls.__name__, cls)
        todo.extend(cls.__subclasses__())
    return found


def translate_invoke_error(exc: BaseException, where: str) -> FeedlineError | None:
    """The feedline error for a failed Invoke call (not a function error); None if `exc` is not botocore's."""
    from botocore.exceptions import (
        BotoCoreError,
        ClientError,
        ConnectionError,
        HTTPClientError,
        NoCredentialsError,
        PartialCredentialsError,
    )

    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        code = str(error.get("Code", ""))
        said = f"{code}: {error.get('Message') or code}"
        status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
        if code in TRANSIENT_CODES or status == 429 or status >= 500:
            return TransientError(f"{where}: Lambda is throttling or unavailable ({said}); retrying may help")
        return TerminalError(f"{where}: Lambda refused the invocation ({said})")
    if isinstance(exc, NoCredentialsError | PartialCredentialsError):
        return TerminalError(f"{where}: no usable AWS credentials ({exc}); fix the Airflow AWS connection")
    if isinstance(exc, ConnectionError | HTTPClientError):  # includes the read timeout
        return TransientError(f"{where}: no answer from Lambda ({exc}); retrying may help")
    if isinstance(exc, BotoCoreError):
        return TerminalError(f"{where}: {type(exc).__name__}: {exc}")
    return None
