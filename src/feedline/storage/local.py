"""A folder as a storage root: settled files only, SHA-256 identities, atomic writes, no escape."""

from __future__ import annotations

import errno
import hashlib
import logging
import os
import shutil
import stat
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

from feedline.errors import TerminalError, TransientError, UnsafeKeyError
from feedline.storage.base import (
    ObjectInfo,
    ObjectNotFoundError,
    Storage,
    StorageAccessError,
    check_key,
    in_hidden_dir,
    is_ignored,
    literal_prefix,
    match_key,
)

log = logging.getLogger(__name__)

CHUNK = 1 << 20


class _DigestCache:
    """SHA-256 digests keyed by (path, size, mtime_ns, inode): a changed file is rehashed, others never."""

    def __init__(self, capacity: int = 65536) -> None:
        self._entries: OrderedDict[tuple[str, int, int, int], str] = OrderedDict()
        self._capacity = capacity
        self._lock = threading.Lock()

    def digest(self, path: Path, st: os.stat_result) -> str:
        cache_key = (str(path), st.st_size, st.st_mtime_ns, st.st_ino)
        with self._lock:
            if cache_key in self._entries:
                self._entries.move_to_end(cache_key)
                return self._entries[cache_key]
        value = "sha256:" + sha256_file(path)
        with self._lock:
            self._entries[cache_key] = value
            while len(self._entries) > self._capacity:
                self._entries.popitem(last=False)
        return value

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


digests = _DigestCache()


def sha256_file(path: Path) -> str:
    """Hex SHA-256 of a file, read in 1 MB chunks."""
    sha = hashlib.sha256()
    buf = bytearray(CHUNK)
    view = memoryview(buf)
    with path.open("rb", buffering=0) as f:
        while n := f.readinto(buf):
            sha.update(view[:n])
    return sha.hexdigest()


@contextmanager
def _translated(action: str, where: str) -> Iterator[None]:
    """OS errors become feedline errors: missing and forbidden are terminal, the rest may pass."""
    try:
        yield
    except (TerminalError, TransientError):
        raise
    except FileNotFoundError as exc:
        raise ObjectNotFoundError(f"cannot {action} {where}: no such file ({exc.filename})") from exc
    except PermissionError as exc:
        raise StorageAccessError(
            f"cannot {action} {where}: permission denied; check the owner and mode of {exc.filename}"
        ) from exc
    except (IsADirectoryError, NotADirectoryError) as exc:
        raise TerminalError(f"cannot {action} {where}: {exc.strerror} ({exc.filename})") from exc
    except OSError as exc:
        raise TransientError(f"cannot {action} {where}: {exc}") from exc


class LocalStorage(Storage):
    """Objects are the regular files under `root`; keys are their '/'-separated relative paths.

    A file is listed once it is complete: its mtime is at least `settle_seconds` old (a writer still
    busy with it keeps touching it). Symlinked files are followed only if they resolve inside the
    root; symlinked directories are not descended.
    """

    def __init__(self, root: Path | str, *, settle_seconds: float = 2.0) -> None:
        self.root = Path(root).expanduser().resolve()
        self.settle_seconds = settle_seconds
        self.uri = str(self.root)

    def __repr__(self) -> str:
        return f"LocalStorage({self.uri!r}, settle_seconds={self.settle_seconds})"

    def path(self, key: str) -> Path:
        """The path of `key` under the root; raises `UnsafeKeyError` if it (or a symlink) leads outside."""
        check_key(key, self.uri)
        path = self.root / key
        if not path.resolve().is_relative_to(self.root):
            raise UnsafeKeyError(
                f"unsafe key {key!r} under {self.uri}: it resolves to {path.resolve()}, outside the root "
                "(through a symlink); move the file into the root instead of linking it"
            )
        return path

    def list(self, pattern: str = "*") -> Iterator[ObjectInfo]:
        start = self.root / literal_prefix(pattern)
        if not self.root.is_dir():
            log.warning("%s is not a folder (yet): nothing to list", self.uri)
            return
        settled_before = time.time() - self.settle_seconds
        for folder, dirs, files in os.walk(start, onerror=self._walk_error):
            dirs[:] = sorted(d for d in dirs if not d.startswith("."))
            rel_folder = Path(folder).relative_to(self.root).as_posix()
            for name in sorted(files):
                key = name if rel_folder == "." else f"{rel_folder}/{name}"
                if is_ignored(key) or in_hidden_dir(key) or not match_key(key, pattern):
                    continue
                found = self._stat_listed(key)
                if found is None:
                    continue
                path, st = found
                if st.st_mtime > settled_before:
                    log.debug("%s is not settled yet (modified %.1fs ago)", key, time.time() - st.st_mtime)
                    continue
                try:
                    identity = digests.digest(path, st)
                except OSError as exc:
                    log.warning("skipping %s: %s", path, exc)
                    continue
                yield ObjectInfo(key=key, size=st.st_size, mtime=st.st_mtime, identity=identity)

    def _walk_error(self, exc: OSError) -> None:
        if exc.errno != errno.ENOENT:
            log.warning("cannot list %s: %s", exc.filename, exc)

    def _stat_listed(self, key: str) -> tuple[Path, os.stat_result] | None:
        try:
            path = self.path(key)
            st = path.stat()
        except UnsafeKeyError as exc:
            log.warning("skipping %s", exc)
            return None
        except OSError:
            return None
        return (path, st) if stat.S_ISREG(st.st_mode) else None

    def info(self, key: str) -> ObjectInfo | None:
        path = self.path(key)
        with _translated("read", str(path)):
            try:
                st = path.stat()
            except FileNotFoundError:
                return None
            if not stat.S_ISREG(st.st_mode):
                return None
            return ObjectInfo(key=key, size=st.st_size, mtime=st.st_mtime, identity=digests.digest(path, st))

    def open(self, key: str) -> BinaryIO:
        path = self.path(key)
        with _translated("open", str(path)):
            return path.open("rb")

    def local_path(self, key: str) -> Path:
        """The file's real path (symlinks resolved), to read in place; existence is not checked."""
        return self.path(key).resolve()

    def download(self, key: str, dest: Path) -> Path:
        src = self.path(key)
        with _translated("copy", f"{src} to {dest}"):
            if dest.exists() and dest.resolve() == src.resolve():
                return dest
            dest.parent.mkdir(parents=True, exist_ok=True)
            with src.open("rb") as reader:
                _write_atomically(dest, lambda out: shutil.copyfileobj(reader, out, CHUNK))
        return dest

    def upload(self, src: Path, key: str) -> str:
        path = self.path(key)
        with _translated("write", f"{src} to {path}"):
            path.parent.mkdir(parents=True, exist_ok=True)
            with Path(src).open("rb") as reader:
                _write_atomically(path, lambda out: shutil.copyfileobj(reader, out, CHUNK))
        return str(path)

    def write_bytes(self, key: str, data: bytes) -> str:
        path = self.path(key)
        with _translated("write", str(path)):
            path.parent.mkdir(parents=True, exist_ok=True)
            _write_atomically(path, lambda out: out.write(data))
        return str(path)

    def delete(self, key: str) -> None:
        path = self.path(key)
        with _translated("delete", str(path)):
            path.unlink(missing_ok=True)

    def exists(self, key: str) -> bool:
        path = self.path(key)
        with _translated("check", str(path)):
            return path.is_file()

    def url(self, key: str) -> str:
        return str(self.path(key))

    def _move_to(self, key: str, dest: Storage, dest_key: str) -> bool:
        """Same filesystem: hard-link then unlink (atomic, never clobbers); else copy into place.

        A symlinked source is linked by its target's content, so the moved file never dangles.
        """
        if not isinstance(dest, LocalStorage):
            return super()._move_to(key, dest, dest_key)
        src, target = self.path(key), dest.path(dest_key)
        with _translated("move", f"{src} to {target}"):
            target.parent.mkdir(parents=True, exist_ok=True)
            try:
                os.link(src.resolve(), target)
            except FileExistsError:
                return False
            except OSError as exc:
                if exc.errno not in (errno.EXDEV, errno.EPERM, errno.EMLINK, errno.ENOTSUP, errno.EOPNOTSUPP):
                    raise
                if not _copy_no_clobber(src, target):
                    return False
            src.unlink(missing_ok=True)  # gone already: a concurrent mover of the same file deleted it
        return True


def _temp_sibling(path: Path) -> Path:
    """A temporary name next to `path` that listings ignore (dot-prefixed, `.tmp` suffix)."""
    return path.with_name(f".{path.name}.{uuid.uuid4().hex[:12]}.tmp")


def _write_atomically(path: Path, write: Callable[[BinaryIO], object]) -> None:
    """Write through a temporary sibling, fsync it, then rename over `path`: readers never see half a file."""
    tmp = _temp_sibling(path)
    try:
        with tmp.open("wb") as out:
            write(out)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _copy_no_clobber(src: Path, target: Path) -> bool:
    """Copy across filesystems without overwriting: copy to a temp sibling, then link it into place."""
    tmp = _temp_sibling(target)
    try:
        shutil.copy2(src, tmp)
        try:
            os.link(tmp, target)
        except FileExistsError:
            return False
        except OSError:
            if target.exists():
                return False
            os.replace(tmp, target)
        return True
    finally:
        tmp.unlink(missing_ok=True)
