"""The dirty sample generator: deterministic, dirty in the promised ways, and exact about its outcome."""

from __future__ import annotations

import gzip
import json
import time
from pathlib import Path

import polars as pl
import pytest

from feedline import sample
from feedline.contract import load_feed
from feedline.sample import SampleStats, write_orders_csv
from feedline.transform import transform_file

ORDERS = load_feed(Path(__file__).resolve().parents[2] / "feeds" / "orders.yaml")


def _transform(path: Path) -> tuple[pl.DataFrame, pl.DataFrame, tuple[int, int, int, int]]:
    clean, rejected = path.with_suffix(".clean.parquet"), path.with_suffix(".rejected.parquet")
    result = transform_file(ORDERS, path, clean, rejected)
    counts = (result.rows_in, result.rows_out, result.rows_rejected, result.duplicates_dropped)
    return pl.read_parquet(clean), pl.read_parquet(rejected), counts


@pytest.mark.parametrize("seed", [0, 1, 7])
def test_stats_are_exactly_what_the_transform_makes_of_the_file(tmp_path: Path, seed: int) -> None:
    stats = write_orders_csv(tmp_path / "o.csv", rows=3000, seed=seed)
    clean, rejected, counts = _transform(tmp_path / "o.csv")
    assert counts == (3000, stats.clean, stats.bad, stats.duplicates)
    assert stats.bad > 30 and stats.duplicates > 50
    assert clean["order_id"].n_unique() == clean.height
    assert rejected["_reason"].str.len_chars().min() > 0


def test_rates_can_be_changed_and_zeroed(tmp_path: Path) -> None:
    stats = write_orders_csv(tmp_path / "o.csv", rows=1000, dup_rate=0, bad_rate=0)
    assert (stats.bad, stats.duplicates) == (0, 0)
    assert _transform(tmp_path / "o.csv")[2] == (1000, 1000, 0, 0)
    heavy = write_orders_csv(tmp_path / "h.csv", rows=1000, dup_rate=0.2, bad_rate=0.3)
    assert _transform(tmp_path / "h.csv")[2] == (1000, heavy.clean, heavy.bad, heavy.duplicates)
    assert heavy.bad > 250 and heavy.duplicates > 150


def test_blocks_repeat_with_shifted_ids_and_stay_exact(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sample, "BLOCK_ROWS", 1000)
    stats = write_orders_csv(tmp_path / "o.csv", rows=2500, seed=3, start_id=500)
    clean, _, counts = _transform(tmp_path / "o.csv")
    assert counts == (2500, stats.clean, stats.bad, stats.duplicates)
    ids = clean["order_id"]
    assert ids.min() >= 500 and ids.max() < 500 + 2500
    assert ids.is_unique().all()


def test_every_kind_of_defect_is_rejected_for_its_reason(tmp_path: Path) -> None:
    write_orders_csv(tmp_path / "o.csv", rows=20_000, seed=5)
    _, rejected, _ = _transform(tmp_path / "o.csv")
    problems = rejected["_reason"].str.split("; ").explode()
    kinds = set(problems.str.replace_all(r"'[^']*'", "'…'").str.replace(r" \(.*\)$", ""))
    assert kinds == {
        "order_id: required value is missing",
        "order_id: '…' is not an integer",
        "amount: required value is missing",
        "amount: '…' is not a decimal(12,2)",
        "amount: '…' does not fit decimal(12,2)",
        "quantity: '…' is not an integer",
        "quantity: '…' is out of range for int",
        "ordered_at: required value is missing",
        "ordered_at: '…' is not a timestamp",
        "is_gift: '…' is not a bool",
    }
    assert (rejected["_reason"].str.count_matches("; ") == 1).any()


def test_the_file_is_dirty_in_the_promised_ways(tmp_path: Path) -> None:
    write_orders_csv(tmp_path / "o.csv", rows=2000, seed=2)
    text = (tmp_path / "o.csv").read_text(encoding="utf-8")
    for needle in [
        '"$',
        '",',
        " #",
        "#",
        "@Example.COM",
        "unknown",
        ",?,",
        ", De ,",
        "TRUE",
        "yes",
        "Z,",
        "+02:00",
        "/",
    ]:
        assert needle in text, needle
    assert any(line.count('"') >= 2 and ", " in line.split('"')[1] for line in text.splitlines())


def test_clean_values_are_normalised(tmp_path: Path) -> None:
    write_orders_csv(tmp_path / "o.csv", rows=2000, seed=4)
    clean, _, _ = _transform(tmp_path / "o.csv")
    assert set(clean["country"].drop_nulls()) <= {"US", "DE", "FR", "GB", "NL", "ES", "IT"}
    assert set(clean["status"].drop_nulls()) <= {"pending", "shipped", "delivered", "cancelled", "returned"}
    assert clean["customer_email"].drop_nulls().str.contains("[A-Z ]").sum() == 0
    assert clean["ordered_at"].null_count() == 0 and clean["amount"].null_count() == 0
    assert clean["customer_name"].str.contains(", ").any()


def test_same_seed_same_bytes_other_seed_other_bytes(tmp_path: Path) -> None:
    write_orders_csv(tmp_path / "a.csv", rows=500, seed=9)
    write_orders_csv(tmp_path / "b.csv", rows=500, seed=9)
    write_orders_csv(tmp_path / "c.csv", rows=500, seed=10)
    assert (tmp_path / "a.csv").read_bytes() == (tmp_path / "b.csv").read_bytes()
    assert (tmp_path / "a.csv").read_bytes() != (tmp_path / "c.csv").read_bytes()


def test_gzip_output(tmp_path: Path) -> None:
    stats = write_orders_csv(tmp_path / "o.csv.gz", rows=800, seed=1, gzip=True)
    plain = write_orders_csv(tmp_path / "o.csv", rows=800, seed=1)
    assert gzip.decompress((tmp_path / "o.csv.gz").read_bytes()) == (tmp_path / "o.csv").read_bytes()
    assert stats.bytes == (tmp_path / "o.csv.gz").stat().st_size < plain.bytes
    assert _transform(tmp_path / "o.csv.gz")[2] == (800, stats.clean, stats.bad, stats.duplicates)


def test_zero_rows_is_a_header_only_file(tmp_path: Path) -> None:
    assert write_orders_csv(tmp_path / "o.csv", rows=0) == SampleStats(rows=0, bad=0, duplicates=0, bytes=88)
    assert _transform(tmp_path / "o.csv")[2] == (0, 0, 0, 0)


def test_bad_arguments(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="rows"):
        write_orders_csv(tmp_path / "o.csv", rows=-1)
    with pytest.raises(ValueError, match="sum below 1"):
        write_orders_csv(tmp_path / "o.csv", rows=1, dup_rate=0.5, bad_rate=0.5)


def test_command_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    sample.main([str(tmp_path / "o.csv.gz"), "--rows", "300", "--seed", "2", "--start-id", "1000", "--gzip"])
    printed = json.loads(capsys.readouterr().out)
    assert printed["rows"] == 300
    assert printed["clean"] == printed["rows"] - printed["bad"] - printed["duplicates"]
    clean, _, counts = _transform(tmp_path / "o.csv.gz")
    assert counts == (300, printed["clean"], printed["bad"], printed["duplicates"])
    assert clean["order_id"].min() >= 1000


def test_gzip_output_is_deterministic(tmp_path: Path) -> None:
    """The same arguments give the same bytes, so a re-delivered sample is recognised as known content."""
    first = write_orders_csv(tmp_path / "a.csv.gz", rows=50, seed=4, gzip=True)
    time.sleep(1.1)  # a gzip header with an mtime would differ now
    write_orders_csv(tmp_path / "b.csv.gz", rows=50, seed=4, gzip=True)
    assert (tmp_path / "a.csv.gz").read_bytes() == (tmp_path / "b.csv.gz").read_bytes()
    assert first.bytes == (tmp_path / "b.csv.gz").stat().st_size
