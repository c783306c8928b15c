"""LocalStorage: settled listings, SHA-256 identities, atomic writes, moves that never clobber, no escape."""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path

import pytest

from feedline.errors import UnsafeKeyError
from feedline.storage import LocalStorage, ObjectNotFoundError
from feedline.storage import local as local_module

SETTLE = 2.0  # no test sleeps: files are aged with os.utime, so a realistic settle costs nothing


def put(root: Path, key: str, data: bytes, age: float = 10.0) -> Path:
    """Write a file and age its mtime by `age` seconds (0: just written)."""
    path = root / key
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    if age:
        past = time.time() - age
        os.utime(path, (past, past))
    return path


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@pytest.fixture
def store(tmp_path: Path) -> LocalStorage:
    return LocalStorage(tmp_path / "landing", settle_seconds=SETTLE)


def keys(store: LocalStorage, pattern: str = "*") -> list[str]:
    return [info.key for info in store.list(pattern)]


def test_lists_nested_keys_relative_with_slashes(store: LocalStorage) -> None:
    for key in ("b.csv", "a.csv.gz", "2024/01/c.csv", "2024/d.json", "x y/ü.csv"):
        put(store.root, key, key.encode())
    assert keys(store) == ["a.csv.gz", "b.csv", "2024/d.json", "2024/01/c.csv", "x y/ü.csv"]
    assert keys(store, "*.csv") == ["b.csv", "2024/01/c.csv", "x y/ü.csv"]
    assert keys(store, "*.csv*") == ["a.csv.gz", "b.csv", "2024/01/c.csv", "x y/ü.csv"]
    assert keys(store, "2024/*") == ["2024/d.json"]
    assert keys(store, "2024/**/*.csv") == ["2024/01/c.csv"]
    info = next(i for i in store.list() if i.key == "2024/01/c.csv")
    assert (info.size, info.identity) == (len(b"2024/01/c.csv"), sha(b"2024/01/c.csv"))


def test_skips_temporary_hidden_names_dot_dirs_and_non_files(store: LocalStorage) -> None:
    for key in (
        "ok.csv",
        ".hidden.csv",
        "~lock.csv",
        "big.csv.part",
        "x.csv.tmp",
        "y.crdownload",
        ".git/a.csv",
        "sub/.staging/b.csv",
        "sub/ok2.csv",
    ):
        put(store.root, key, b"x")
    (store.root / "dir.csv").mkdir()
    os.mkfifo(store.root / "pipe.csv")
    assert keys(store) == ["ok.csv", "sub/ok2.csv"]


def test_missing_root_lists_nothing(tmp_path: Path) -> None:
    assert list(LocalStorage(tmp_path / "nope").list()) == []


def test_a_file_is_listed_only_once_settled(store: LocalStorage) -> None:
    path = put(store.root, "new.csv", b"partial", age=0)
    put(store.root, "old.csv", b"done")
    assert keys(store) == ["old.csv"]
    with path.open("ab") as f:
        f.write(b" still writing")
    assert keys(store) == ["old.csv"]
    past = time.time() - SETTLE - 0.05
    os.utime(path, (past, past))
    assert keys(store) == ["new.csv", "old.csv"]
    assert LocalStorage(store.root, settle_seconds=0).info("new.csv") is not None


def test_identity_is_stable_and_follows_content(store: LocalStorage) -> None:
    put(store.root, "a.csv", b"one")
    first = store.info("a.csv")
    assert first is not None
    assert first.identity == sha(b"one")
    assert [i.identity for i in store.list()] == [first.identity]
    put(store.root, "a.csv", b"two")
    assert [i.identity for i in store.list()] == [sha(b"two")]
    assert store.info("missing.csv") is None


def test_identity_of_a_large_file_streams_in_chunks(store: LocalStorage) -> None:
    data = os.urandom(local_module.CHUNK * 2 + 123)
    put(store.root, "big.bin", data)
    assert next(store.list()).identity == sha(data)


def test_digests_are_cached_by_path_size_and_mtime(
    store: LocalStorage, monkeypatch: pytest.MonkeyPatch
) -> None:
    local_module.digests.clear()
    calls: list[Path] = []
    real = local_module.sha256_file

    def counting(path: Path) -> str:
        calls.append(path)
        return real(path)

    monkeypatch.setattr(local_module, "sha256_file", counting)
    path = put(store.root, "a.csv", b"same")
    for _ in range(3):
        assert [i.identity for i in store.list()] == [sha(b"same")]
    assert len(calls) == 1
    path.write_bytes(b"other")
    past = time.time() - 5
    os.utime(path, (past, past))
    assert [i.identity for i in store.list()] == [sha(b"other")]
    assert len(calls) == 2


def test_writes_are_atomic_and_leave_no_temp_files(store: LocalStorage, tmp_path: Path) -> None:
    url = store.write_bytes("out/a.parquet", b"payload")
    assert url == str(store.root / "out/a.parquet")
    assert (store.root / "out/a.parquet").read_bytes() == b"payload"
    src = put(tmp_path, "src.bin", os.urandom(3 * local_module.CHUNK + 7))
    store.upload(src, "out/b.bin")
    assert (store.root / "out/b.bin").read_bytes() == src.read_bytes()
    store.write_bytes("out/a.parquet", b"replaced")
    assert (store.root / "out/a.parquet").read_bytes() == b"replaced"
    assert sorted(p.name for p in (store.root / "out").iterdir()) == ["a.parquet", "b.bin"]


def test_a_temp_file_of_a_writer_is_never_listed(store: LocalStorage) -> None:
    tmp = local_module._temp_sibling(store.root / "a.csv")
    put(store.root, tmp.name, b"half")
    assert keys(store) == []


def test_open_streams_and_download_copies(store: LocalStorage, tmp_path: Path) -> None:
    put(store.root, "d/a.csv", b"abc" * 1000)
    with store.open("d/a.csv") as f:
        assert f.read(3) == b"abc"
        assert len(f.read()) == 2997
    dest = store.download("d/a.csv", tmp_path / "copies" / "a.csv")
    assert dest.read_bytes() == b"abc" * 1000
    assert store.local_path("d/a.csv") == (store.root / "d/a.csv").resolve()
    with pytest.raises(ObjectNotFoundError, match=r"missing\.csv"):
        store.open("missing.csv")


def test_delete_and_exists(store: LocalStorage) -> None:
    put(store.root, "a.csv", b"x")
    assert store.exists("a.csv")
    store.delete("a.csv")
    assert not store.exists("a.csv")
    assert not (store.root / "a.csv").exists()
    store.delete("a.csv")


def test_move_renames_into_new_folders(store: LocalStorage, tmp_path: Path) -> None:
    archive = LocalStorage(tmp_path / "archive")
    put(store.root, "in/a.csv", b"data")
    url = store.move("in/a.csv", archive, "2024/a.csv")
    assert url == str(archive.root / "2024/a.csv")
    assert (archive.root / "2024/a.csv").read_bytes() == b"data"
    assert not (store.root / "in/a.csv").exists()
    with pytest.raises(ObjectNotFoundError):
        store.move("in/a.csv", archive, "2024/a.csv")


def test_move_onto_same_content_just_deletes_the_source(store: LocalStorage, tmp_path: Path) -> None:
    archive = LocalStorage(tmp_path / "archive")
    put(archive.root, "a.csv", b"same")
    put(store.root, "a.csv", b"same")
    assert store.move("a.csv", archive, "a.csv") == str(archive.root / "a.csv")
    assert not (store.root / "a.csv").exists()
    assert [p.name for p in archive.root.iterdir()] == ["a.csv"]


def test_move_onto_different_content_keeps_both(store: LocalStorage, tmp_path: Path) -> None:
    archive = LocalStorage(tmp_path / "archive")
    put(archive.root, "a.csv.gz", b"old")
    put(store.root, "a.csv.gz", b"new")
    tag = hashlib.sha256(b"new").hexdigest()[:12]
    url = store.move("a.csv.gz", archive, "a.csv.gz")
    assert url == str(archive.root / f"a.{tag}.csv.gz")
    assert (archive.root / "a.csv.gz").read_bytes() == b"old"
    assert (archive.root / f"a.{tag}.csv.gz").read_bytes() == b"new"
    put(store.root, "a.csv.gz", b"new")
    assert store.move("a.csv.gz", archive, "a.csv.gz") == url
    assert sorted(p.name for p in archive.root.iterdir()) == sorted(["a.csv.gz", f"a.{tag}.csv.gz"])
    assert not (store.root / "a.csv.gz").exists()


def test_move_across_filesystems_copies(
    store: LocalStorage, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    archive = LocalStorage(tmp_path / "archive")
    put(store.root, "a.csv", b"data")

    def no_link(*args: object, **kwargs: object) -> None:
        raise OSError(18, "Invalid cross-device link")

    monkeypatch.setattr(local_module.os, "link", no_link)
    store.move("a.csv", archive, "a.csv")
    assert (archive.root / "a.csv").read_bytes() == b"data"
    assert not (store.root / "a.csv").exists()


@pytest.mark.parametrize("key", ["../etc/passwd", "/abs", "a/../../b", "a\\..\\b", "", "a\x00"])
def test_every_method_rejects_unsafe_keys(store: LocalStorage, tmp_path: Path, key: str) -> None:
    other = LocalStorage(tmp_path / "other")
    put(store.root, "ok.csv", b"x")
    calls = [
        lambda: store.open(key),
        lambda: store.info(key),
        lambda: store.exists(key),
        lambda: store.delete(key),
        lambda: store.url(key),
        lambda: store.local_path(key),
        lambda: store.write_bytes(key, b"x"),
        lambda: store.upload(store.root / "ok.csv", key),
        lambda: store.download(key, tmp_path / "d"),
        lambda: store.move(key, other, "x.csv"),
        lambda: store.move("ok.csv", other, key),
    ]
    for call in calls:
        with pytest.raises(UnsafeKeyError, match=str(tmp_path)):
            call()
    assert (store.root / "ok.csv").exists()
    assert not (tmp_path / "etc").exists()


def test_symlinks_may_not_lead_outside_the_root(store: LocalStorage, tmp_path: Path) -> None:
    secret = put(tmp_path, "secret.csv", b"secret")
    outside_dir = tmp_path / "outside"
    outside_dir.mkdir()
    put(store.root, "real.csv", b"inside")
    (store.root / "evil.csv").symlink_to(secret)
    (store.root / "evil_dir").symlink_to(outside_dir, target_is_directory=True)
    (store.root / "alias.csv").symlink_to(store.root / "real.csv")
    with pytest.raises(UnsafeKeyError, match=r"evil\.csv"):
        store.open("evil.csv")
    with pytest.raises(UnsafeKeyError, match="outside the root"):
        store.write_bytes("evil_dir/x.csv", b"x")
    assert not (outside_dir / "x.csv").exists()
    assert keys(store) == ["alias.csv", "real.csv"]
    with store.open("alias.csv") as f:
        assert f.read() == b"inside"


def test_move_onto_itself_never_loses_the_file(store: LocalStorage) -> None:
    put(store.root, "real.csv", b"only copy")
    (store.root / "alias.csv").symlink_to("real.csv")
    assert store.move("real.csv", store, "real.csv") == str(store.root / "real.csv")
    assert store.move("real.csv", store, "alias.csv") == str(store.root / "alias.csv")
    assert (store.root / "real.csv").read_bytes() == b"only copy"


def test_moving_a_symlink_moves_its_content(store: LocalStorage, tmp_path: Path) -> None:
    archive = LocalStorage(tmp_path / "archive")
    put(store.root, "real.csv", b"content")
    (store.root / "alias.csv").symlink_to("real.csv")
    store.move("alias.csv", archive, "a.csv")
    moved = archive.root / "a.csv"
    assert not moved.is_symlink()
    assert moved.read_bytes() == b"content"
    assert not (store.root / "alias.csv").is_symlink()
    assert (store.root / "real.csv").read_bytes() == b"content"
