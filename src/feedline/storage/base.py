"""One interface over a local folder and S3: list, stream, write, move — never outside the root."""

from __future__ import annotations

import abc
import logging
import re
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from fnmatch import fnmatchcase
from pathlib import Path
from typing import BinaryIO

from feedline.errors import TerminalError, UnsafeKeyError

log = logging.getLogger(__name__)

IGNORED_SUFFIXES = (".tmp", ".part", ".partial", ".crdownload", ".swp")
COMPRESSION_SUFFIXES = (".gz", ".bz2", ".xz", ".zst", ".zip", ".lz4", ".snappy")
MAX_MOVE_ATTEMPTS = 100


class ObjectNotFoundError(TerminalError):
    """The object (or the bucket / root holding it) does not exist."""


class BucketNotFoundError(TerminalError):
    """The S3 bucket of a storage root does not exist."""


class StorageAccessError(TerminalError):
    """The credentials in use may not read or write this location."""


@dataclass(frozen=True)
class ObjectInfo:
    """One object under a storage root. `key` is relative to the root, '/'-separated.

    `identity` is the content identity the ledger keys on: "etag:<etag>" (quotes stripped) for S3,
    "sha256:<hex>" for local files. Identities of different kinds are never equal.
    """

    key: str
    size: int
    mtime: float
    identity: str


def is_ignored(key: str) -> bool:
    """Temporary and hidden names are never picked up: a writer is still busy with them."""
    name = key.rsplit("/", 1)[-1]
    return name.startswith(".") or name.startswith("~") or name.lower().endswith(IGNORED_SUFFIXES)


def in_hidden_dir(key: str) -> bool:
    """Whether a key lies inside a dot-directory (`.git/…`, `.staging/…`), which listings skip."""
    return any(part.startswith(".") for part in key.split("/")[:-1])


def check_key(key: str, root: str) -> str:
    """Return `key` unchanged if it is a canonical relative key, else raise `UnsafeKeyError`.

    A key is '/'-separated, relative, non-empty, with no '', '.' or '..' segment, no backslash and no
    NUL. Rejecting instead of normalising keeps one spelling per object, so the ledger never sees
    `a.csv` and `./a.csv` as two files.
    """
    reason = None
    if not isinstance(key, str) or not key:
        reason = "the key is empty"
    elif "\x00" in key:
        reason = "it contains a NUL character"
    elif "\\" in key:
        reason = "it contains a backslash"
    elif key.startswith("/"):
        reason = "it is absolute"
    else:
        parts = key.split("/")
        if ".." in parts:
            reason = "it contains a '..' segment"
        elif "." in parts or "" in parts:
            reason = "it contains an empty or '.' segment"
    if reason:
        raise UnsafeKeyError(
            f"unsafe key {key!r} under {root}: {reason}; keys must be relative '/'-separated paths inside "
            "the root without '.', '..', empty segments, backslashes or NUL"
        )
    return key


def match_key(key: str, pattern: str) -> bool:
    """Whether `key` matches the glob `pattern`.

    A pattern without '/' matches the file name at any depth (`*.csv` matches `a.csv` and
    `2024/01/a.csv`). A pattern with '/' matches the whole key segment by segment, where `*`, `?` and
    `[...]` stay within one segment and a `**` segment matches any number of segments
    (`2024/**/*.csv`). Matching is case-sensitive, like S3 and Linux file names.
    """
    if "/" not in pattern:
        return fnmatchcase(key.rsplit("/", 1)[-1], pattern)
    return _match_parts(key.split("/"), pattern.strip("/").split("/"))


def _match_parts(parts: list[str], pats: list[str]) -> bool:
    if not pats:
        return not parts
    if pats[0] == "**":
        return any(_match_parts(parts[i:], pats[1:]) for i in range(len(parts) + 1))
    return bool(parts) and fnmatchcase(parts[0], pats[0]) and _match_parts(parts[1:], pats[1:])


def literal_prefix(pattern: str) -> str:
    """The glob-free leading folders of a '/'-pattern (`2024/01/*.csv` → `2024/01/`), to narrow listings."""
    if "/" not in pattern:
        return ""
    dirs = pattern.strip("/").split("/")[:-1]
    literal = []
    for part in dirs:
        if re.search(r"[*?\[]", part):
            break
        literal.append(part)
    return "".join(f"{part}/" for part in literal)


def tagged_key(key: str, identity: str, attempt: int) -> str:
    """A sibling name for `key` tagged with the content identity: `a/b.csv.gz` → `a/b.<id12>.csv.gz`.

    Used when a move finds different content at its destination: both are kept, and moving the same
    content again lands on the same tagged name (and is then recognised as a duplicate).
    """
    folder, _, name = key.rpartition("/")
    tag = re.sub(r"[^0-9a-zA-Z]", "", identity.partition(":")[2] or identity)[:12] or "dup"
    if attempt > 1:
        tag = f"{tag}-{attempt}"
    lower = name.lower()
    compression = next((s for s in COMPRESSION_SUFFIXES if lower.endswith(s) and len(name) > len(s)), "")
    base = name[: len(name) - len(compression)]
    stem, dot, ext = base.rpartition(".")
    if not dot or not stem:
        stem, ext = base, ""
    new = f"{stem}.{tag}.{ext}{compression}" if ext else f"{stem}.{tag}{compression}"
    return f"{folder}/{new}" if folder else new


class Storage(abc.ABC):
    """A root (a folder or an s3://bucket/prefix) holding objects addressed by relative keys.

    Every method validates its key with `check_key` (and local storage also checks where symlinks
    lead), so no key can reach outside the root. Errors are `TerminalError` (missing object, access
    denied, unsafe key) or `TransientError` (network, throttling): callers never see driver errors.
    """

    uri: str

    @abc.abstractmethod
    def list(self, pattern: str = "*") -> Iterator[ObjectInfo]:
        """Objects whose key matches the glob `pattern` (see `match_key`), complete ones only.

        Names for which `is_ignored` holds, keys inside dot-directories and keys that `check_key`
        rejects are skipped.
        """

    @abc.abstractmethod
    def info(self, key: str) -> ObjectInfo | None:
        """Size, mtime and identity of one object, or None if it does not exist."""

    @abc.abstractmethod
    def open(self, key: str) -> BinaryIO:
        """A streaming binary reader of one object."""

    @abc.abstractmethod
    def download(self, key: str, dest: Path) -> Path:
        """Copy one object to the local file `dest` (parents created, written atomically); returns `dest`."""

    def local_path(self, key: str) -> Path | None:
        """The object's real local path, to read it in place without a copy; None for remote storage."""
        return None

    @abc.abstractmethod
    def upload(self, src: Path, key: str) -> str:
        """Write a local file as an object (replacing any object at `key`); returns its URI."""

    @abc.abstractmethod
    def write_bytes(self, key: str, data: bytes) -> str:
        """Write a small object (replacing any object at `key`); returns its URI."""

    @abc.abstractmethod
    def delete(self, key: str) -> None:
        """Remove one object; a missing object is not an error."""

    @abc.abstractmethod
    def exists(self, key: str) -> bool:
        """Whether an object exists."""

    @abc.abstractmethod
    def url(self, key: str) -> str:
        """The URI of one object (a file path or s3://…)."""

    def move(self, key: str, dest: Storage, dest_key: str) -> str:
        """Move one object to another root; returns the destination URI. Never overwrites silently.

        If `dest_key` already holds the same content (same identity), the source is just deleted.
        If it holds different content, the object goes to `tagged_key(dest_key, identity, n)` instead,
        so both are kept. Moves between roots of the same kind use a fast path (rename, server-side
        copy); other pairs copy through a local file. A name taken by a concurrent mover is looked at
        again, so two processes moving the same object leave one copy, not a tagged twin.
        """
        src = self.info(key)
        if src is None:
            raise ObjectNotFoundError(f"cannot move {self.url(key)}: no such object")
        check_key(dest_key, dest.uri)
        attempt = 0
        for _ in range(MAX_MOVE_ATTEMPTS):
            target = dest_key if attempt == 0 else tagged_key(dest_key, src.identity, attempt)
            if self._is_same_object(key, dest, target):
                log.warning("%s and %s are the same object; nothing to move", self.url(key), dest.url(target))
                return dest.url(target)
            existing = dest.info(target)
            if existing is not None:
                if existing.identity == src.identity:
                    log.info("%s already holds %s; deleting the source", dest.url(target), self.url(key))
                    self.delete(key)
                    return dest.url(target)
                attempt += 1
                continue
            if self._move_to(key, dest, target):
                if target != dest_key:
                    log.warning(
                        "%s holds other content; moved %s to %s instead",
                        dest.url(dest_key),
                        self.url(key),
                        dest.url(target),
                    )
                return dest.url(target)
        raise TerminalError(f"cannot move {self.url(key)} to {dest.url(dest_key)}: all tagged names taken")

    def _is_same_object(self, key: str, dest: Storage, dest_key: str) -> bool:
        """Whether both names reach one object (same URI, or one local file through a link): deleting the
        source as a "duplicate" would then lose the only copy."""
        if self.url(key) == dest.url(dest_key):
            return True
        here = self.local_path(key)
        return here is not None and here == dest.local_path(dest_key)

    def _move_to(self, key: str, dest: Storage, dest_key: str) -> bool:
        """Move to a free `dest_key`; False if the name was taken meanwhile. Subclasses add fast paths."""
        local = self.local_path(key)
        if local is not None:
            dest.upload(local, dest_key)
        else:
            with tempfile.TemporaryDirectory(prefix="feedline-move-") as tmp:
                dest.upload(self.download(key, Path(tmp) / "object"), dest_key)
        self.delete(key)
        return True
