"""The error families: terminal errors quarantine without retry, transient errors are retried."""

from __future__ import annotations


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
