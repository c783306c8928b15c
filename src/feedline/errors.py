"""The error families: terminal errors quarantine without retry, transient errors are retried."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


class FeedlineError(Exception):
    """Base of every error feedline raises on purpose."""


class TerminalError(FeedlineError):
    """Retrying cannot help: bad data, bad contract, permission denied. The file is quarantined."""


class TransientError(FeedlineError):
    """Retrying may help: a lock, a lost connection, throttling, a network blip."""


class ContractError(TerminalError):
    """A feed file is invalid; the message names the file, the field and the fix."""


class BadFileError(TerminalError):
    """A landed file cannot be read as its feed's contract says (encoding, compression, header)."""


class UnsafeKeyError(TerminalError):
    """An object key would escape its feed's prefix."""


class QualityCheckError(TerminalError):
    """A batch failed one or more `error` checks: its load rolled back, the file is quarantined.

    `results` holds the checks' results (`feedline.quality.checks.CheckResult`) so that the loader can
    record them after the rollback; the message lists every failed check on its own."""

    def __init__(self, message: str, results: Sequence[Any] = ()) -> None:
        super().__init__(message)
        self.results: tuple[Any, ...] = tuple(results)


#: What a person does about each family; `{feed}` and `{key}` are filled in by `failure_message`.
_ACTIONS: dict[type[FeedlineError], str] = {
    TerminalError: "once the file or the contract is fixed: `feedline replay --feed {feed} --file {key}`",
    TransientError: (
        "it is retried with backoff; if retries run out, `feedline replay --feed {feed} --state failed` "
        "once the cause is gone"
    ),
}


def classify(exc: BaseException) -> FeedlineError | None:
    """The family of an error that escaped the translation at its boundary, or None if unknown.

    Storage and warehouse translate their driver errors where they call the driver (storage/s3.py,
    each warehouse's `translate_error`); this catches what reaches a task from elsewhere: boto errors
    from other AWS calls, and operating-system errors. Unknown errors are treated as transient by
    the caller (retried, then `failed`, replayable): a bug is not the file's fault.
    """
    import errno

    if isinstance(exc, FeedlineError):
        return exc
    if type(exc).__module__.split(".")[0] in ("botocore", "boto3", "s3transfer"):
        from feedline.storage.s3 import translate_error

        return translate_error(exc, "call AWS", "")
    if isinstance(exc, PermissionError):
        return TerminalError(f"permission denied: {exc}")
    if isinstance(exc, ConnectionError | TimeoutError | MemoryError):
        return TransientError(f"{type(exc).__name__}: {exc}")
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EMFILE, errno.ENFILE, errno.EAGAIN):
        return TransientError(f"{type(exc).__name__}: {exc}")
    return None


def failure_message(feed: str, key: str, step: str, exc: BaseException) -> str:
    """'<step> of <feed>/<key> failed: <what> — <what to do>': every failure says all four."""
    family = classify(exc) or TransientError(str(exc))
    action = next(text for kind, text in _ACTIONS.items() if isinstance(family, kind))
    what = str(family) if family is not exc else str(exc)
    if not isinstance(exc, FeedlineError) and type(exc).__name__ not in what:
        what = f"{type(exc).__name__}: {what}"
    return f"{step} of {feed}/{key} failed: {what} — {action.format(feed=feed, key=key)}"
