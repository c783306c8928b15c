"""The checks a clean file passes before a load: whether any key repeats (so the in-batch dedupe runs)."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from feedline.warehouse.parquet import has_duplicate_keys


def write(path: Path, **columns: pa.Array) -> Path:
    pq.write_table(pa.table(columns), path, row_group_size=3)
    return path


@pytest.mark.parametrize(
    ("ids", "duplicates"),
    [
        ([1, 2, 3, 4, 5, 6, 7], False),  # ascending: proved in one pass
        ([5, 1, 7, 3, 2, 6, 4], False),  # unordered but unique: counted
        ([1, 2, 3, 3, 4, 5, 6], True),  # a repeat inside a row group
        ([1, 2, 3, 4, 5, 6, 3], True),  # a repeat across row groups
        ([1, 2, 3, 3, 3, 3, 3], True),
        ([], False),
    ],
)
def test_integer_keys(tmp_path: Path, ids: list[int], duplicates: bool) -> None:
    path = write(tmp_path / "a.parquet", id=pa.array(ids, pa.int64()))
    assert has_duplicate_keys(path, ["id"]) is duplicates


def test_string_and_composite_keys(tmp_path: Path) -> None:
    names = pa.array(["a", "b", "b", "c"])
    regions = pa.array(["eu", "eu", "us", "us"])
    path = write(tmp_path / "a.parquet", name=names, region=regions)
    assert has_duplicate_keys(path, ["name"]) is True
    assert has_duplicate_keys(path, ["region"]) is True
    assert has_duplicate_keys(path, ["name", "region"]) is False
    again = write(tmp_path / "b.parquet", name=pa.array(["a", "b", "b", "a"]), region=regions)
    assert has_duplicate_keys(again, ["name", "region"]) is False
    twice = write(tmp_path / "c.parquet", name=pa.array(["a", "a", "b"]), region=pa.array(["eu", "eu", "eu"]))
    assert has_duplicate_keys(twice, ["name", "region"]) is True
