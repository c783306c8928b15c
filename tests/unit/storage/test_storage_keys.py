"""Key safety, glob matching and collision names shared by every storage backend."""

from __future__ import annotations

import subprocess
import sys

import pytest

from feedline.errors import TerminalError, UnsafeKeyError
from feedline.storage import check_key, is_ignored, match_key, open_storage
from feedline.storage.base import in_hidden_dir, literal_prefix, tagged_key
from feedline.storage.local import LocalStorage
from feedline.storage.s3 import S3Storage


@pytest.mark.parametrize(
    ("key", "reason"),
    [
        ("", "empty"),
        ("../etc/passwd", "'..'"),
        ("a/../../b", "'..'"),
        ("a/..", "'..'"),
        ("/abs", "absolute"),
        ("a\\b.csv", "backslash"),
        ("..\\x", "backslash"),
        ("a\x00b", "NUL"),
        ("a//b", "empty or '.'"),
        ("./a.csv", "empty or '.'"),
        ("a/", "empty or '.'"),
    ],
)
def test_unsafe_keys_are_rejected_with_key_and_root_named(key: str, reason: str) -> None:
    with pytest.raises(UnsafeKeyError) as info:
        check_key(key, "/data/landing")
    message = str(info.value)
    assert repr(key) in message
    assert "/data/landing" in message
    assert reason in message
    assert isinstance(info.value, TerminalError)


@pytest.mark.parametrize(
    "key", ["a.csv", "2024/01/a.csv", "a b/ü €.csv", "a%2Fb.csv", "..a", "a..b/c", "~x/y", "a:b"]
)
def test_ordinary_keys_pass_unchanged(key: str) -> None:
    assert check_key(key, "root") == key


@pytest.mark.parametrize(
    ("key", "pattern", "expected"),
    [
        ("a.csv", "*.csv", True),
        ("sub/deep/a.csv", "*.csv", True),
        ("a.csv.gz", "*.csv*", True),
        ("a.CSV", "*.csv", False),
        ("a.json", "*.csv*", False),
        ("2024/a.csv", "2024/*.csv", True),
        ("2024/01/a.csv", "2024/*.csv", False),
        ("x/2024/a.csv", "2024/*.csv", False),
        ("2024/01/02/a.csv", "2024/**/*.csv", True),
        ("2024/a.csv", "2024/**/*.csv", True),
        ("2025/a.csv", "2024/**/*.csv", False),
        ("a/b/c.csv", "**/c.csv", True),
        ("orders_1.csv", "orders_?.csv", True),
        ("orders_a.csv", "orders_[0-9].csv", False),
        ("anything", "*", True),
    ],
)
def test_match_key(key: str, pattern: str, expected: bool) -> None:
    assert match_key(key, pattern) is expected


def test_literal_prefix_narrows_only_glob_free_folders() -> None:
    assert literal_prefix("*.csv") == ""
    assert literal_prefix("2024/01/*.csv") == "2024/01/"
    assert literal_prefix("2024/*/x/*.csv") == "2024/"
    assert literal_prefix("**/a.csv") == ""


def test_ignored_and_hidden_names() -> None:
    assert is_ignored("a/.hidden.csv")
    assert is_ignored("a/~lock.csv")
    assert is_ignored("big.csv.part")
    assert is_ignored("x.CSV.TMP")
    assert not is_ignored("a.csv")
    assert in_hidden_dir(".git/a.csv")
    assert in_hidden_dir("a/.staging/b.csv")
    assert not in_hidden_dir("a/b.csv")


@pytest.mark.parametrize(
    ("key", "attempt", "expected"),
    [
        ("a/orders.csv", 1, "a/orders.0123456789ab.csv"),
        ("orders.2024-01-01.csv.gz", 1, "orders.2024-01-01.0123456789ab.csv.gz"),
        ("README", 2, "README.0123456789ab-2"),
        ("data.gz", 1, "data.0123456789ab.gz"),
    ],
)
def test_tagged_key_keeps_extensions(key: str, attempt: int, expected: str) -> None:
    assert tagged_key(key, "sha256:0123456789abcdef", attempt) == expected


def test_open_storage_picks_backend(tmp_path: object) -> None:
    local = open_storage(f"file://{tmp_path}/my%20dir", settle_seconds=0.5)
    assert isinstance(local, LocalStorage)
    assert local.uri.endswith("/my dir")
    assert local.settle_seconds == 0.5
    assert isinstance(open_storage(str(tmp_path)), LocalStorage)
    s3 = open_storage("s3://bucket/landing/orders")
    assert isinstance(s3, S3Storage)
    assert (s3.bucket, s3.prefix, s3.uri) == ("bucket", "landing/orders/", "s3://bucket/landing/orders/")
    assert open_storage("s3://bucket").url("a.csv") == "s3://bucket/a.csv"
    with pytest.raises(TerminalError, match="gs://x"):
        open_storage("gs://x/y")
    with pytest.raises(UnsafeKeyError):
        open_storage("s3://bucket/a/../b")


def test_s3_keys_cannot_leave_the_prefix() -> None:
    s3 = S3Storage("s3://bucket/feed/", client=object())
    assert s3.full_key("a b/ü.csv") == "feed/a b/ü.csv"
    assert s3.url("a%2Fb.csv") == "s3://bucket/feed/a%2Fb.csv"
    for key in ("../other/x.csv", "/feed/x.csv", "a/../../x", "a\\b"):
        with pytest.raises(UnsafeKeyError, match="s3://bucket/feed/"):
            s3.url(key)


def test_import_is_cheap() -> None:
    code = (
        "import sys, feedline.storage; print(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('boto3', 'botocore', 'airflow', 'polars', 'pyarrow', 'duckdb')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
