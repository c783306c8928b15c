"""Every case of the bad-input corpus through the real pipeline on DuckDB: quarantined or loaded, never
a crash, a partial load or a silent drop; the ledger's row accounting always balances.

The cases land in a local folder; a few also land in S3 (a moto server), where keys, identities
(ETags) and moves work differently.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import duckdb
import polars as pl
import pytest
from bad_cases import CASES, HEADER, BadCase, feed_spec

import feedline.transform.objects as objects
from feedline.contract import Feed, parse_feed
from feedline.ledger import FileState, LedgerEntry
from feedline.pipeline import FeedPipeline
from feedline.settings import Settings
from support import age, record_outcome

MAX_REASON_CHARS = 1000
LAKE_AREAS = {
    "landing",
    "processed",
    "quarantine",
    "archive",
    ".tmp",
    "warehouse.duckdb",
    "warehouse.duckdb.wal",
}
S3_CASES = ("key_with_spaces_unicode_escape", "truncated_gzip", "changed_while_read")
BY_NAME = {case.name: case for case in CASES}


class Landing:
    """Where a case's file lands: a local folder here, an S3 prefix in `S3Landing`."""

    uri = "data/landing/corpus"

    def __init__(self, home: Path) -> None:
        self.folder = home / "data" / "landing" / "corpus"
        self.folder.mkdir(parents=True)

    def land(self, case: BadCase) -> bytes:
        path = self.folder / case.key
        case.make(path)
        age(path)
        return path.read_bytes()

    def read(self, key: str) -> bytes | None:
        path = self.folder / key
        return path.read_bytes() if path.exists() else None

    def rewrite(self, case: BadCase, read_path: Path) -> None:
        """Apply the case's `during` to the landed file (`read_path` is the file the transform read)."""
        assert case.during is not None
        case.during(read_path)
        age(read_path)


class S3Landing(Landing):
    """The landing prefix of a bucket on the moto server."""

    def __init__(self, client: Any, bucket: str) -> None:
        self.client, self.bucket = client, bucket
        self.uri = f"s3://{bucket}/landing/"

    def _put(self, key: str, write: Callable[[Path], None]) -> bytes:
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "object"
            write(path)
            content = path.read_bytes()
        self.client.put_object(Bucket=self.bucket, Key=f"landing/{key}", Body=content)
        return content

    def land(self, case: BadCase) -> bytes:
        return self._put(case.key, case.make)

    def read(self, key: str) -> bytes | None:
        try:
            body: bytes = self.client.get_object(Bucket=self.bucket, Key=f"landing/{key}")["Body"].read()
        except self.client.exceptions.NoSuchKey:
            return None
        return body

    def rewrite(self, case: BadCase, read_path: Path) -> None:
        assert case.during is not None
        self._put(case.key, case.during)


class Lake:
    """One case's project: its landing, lake areas and DuckDB warehouse."""

    def __init__(self, home: Path, landing: Landing) -> None:
        self.home = home
        self.settings = Settings.from_env({"FEEDLINE_HOME": str(home)})
        self.landing = landing

    def area(self, name: str) -> Path:
        return self.home / "data" / name / "corpus"

    def feed(self, case: BadCase) -> Feed:
        spec = feed_spec(case)
        spec["source"] = {**spec["source"], "uri": self.landing.uri}
        return parse_feed(spec, f"corpus case {case.name}")

    def query(self, sql: str) -> list[tuple[Any, ...]]:
        with duckdb.connect(self.settings.warehouse, read_only=True) as con:
            return con.execute(sql).fetchall()

    def column(self, name: str) -> tuple[Any, ...]:
        rows = self.query(f'SELECT CAST("{name}" AS VARCHAR) FROM corpus_rows ORDER BY id')
        return tuple(value for (value,) in rows)

    def table_rows(self) -> int:
        return int(self.query("SELECT count(*) FROM corpus_rows")[0][0])


def rewrite_during_read(monkeypatch: pytest.MonkeyPatch, lake: Lake, case: BadCase) -> None:
    """Rewrite the landed file once, just after the real transform has read it."""
    real = objects.transform_file
    pending = [case]

    def transform_then_rewrite(feed: Feed, source: Path, clean: Path, rejected: Path) -> Any:
        result = real(feed, source, clean, rejected)
        if pending:
            lake.landing.rewrite(pending.pop(), Path(source))
        return result

    monkeypatch.setattr(objects, "transform_file", transform_then_rewrite)


def run_case(case: BadCase, lake: Lake, monkeypatch: pytest.MonkeyPatch) -> tuple[bytes, FeedPipeline]:
    """Land the case's file and run the feed once; checks the fate of the file in every respect."""
    original = lake.landing.land(case)
    if case.during is not None:
        rewrite_during_read(monkeypatch, lake, case)
    pipeline = FeedPipeline(lake.feed(case), lake.settings)

    summary = pipeline.run_once()

    assert summary.files == {case.key: case.outcome}, summary.errors
    entries = pipeline.ledger.entries("corpus")
    assert len(entries) == 1, entries
    entry = entries[0]
    assert entry.key == case.key
    assert entry.state is FileState(case.outcome)
    assert lake.table_rows() == case.loaded
    if case.outcome == "quarantined":
        _assert_quarantined(case, lake, entry, original)
    else:
        _assert_loaded(case, lake, entry, original)
    for column, values in case.values.items():
        assert lake.column(column) == tuple(None if v is None else str(v) for v in values)
    for sql, expected in case.queries.items():
        assert lake.query(sql) == [(expected,)], sql
    _assert_nothing_stray(lake.home)
    _record(case, lake, entry)
    return original, pipeline


def _record(case: BadCase, lake: Lake, entry: LedgerEntry) -> None:
    """What this run really produced, for docs/reliability.md (see `support.record_outcome`)."""
    reason = entry.error or ""
    if case.outcome == "loaded" and case.rejected:
        rejected = pl.read_parquet(lake.area("quarantine") / "rows" / f"{entry.file_id}.parquet")
        reason = str(rejected["_reason"][0])
    record_outcome(
        "corpus",
        case.name,
        landing=type(lake.landing).__name__,
        state=entry.state.value,
        reason=reason.replace(str(lake.home), "<project>"),
        rows_in=entry.rows_in,
        rows_loaded=entry.rows_loaded,
        rows_rejected=entry.rows_rejected,
        duplicates=entry.duplicates,
    )


def _assert_nothing_stray(home: Path) -> None:
    """Every file the run wrote lies in a lake area: no header or key leads anywhere else."""
    for path in home.rglob("*"):
        if path.is_file():
            relative = path.relative_to(home).parts
            assert relative[0] == "data" and relative[1] in LAKE_AREAS, path


def _assert_quarantined(case: BadCase, lake: Lake, entry: LedgerEntry, original: bytes) -> None:
    reason = entry.error or ""
    files = lake.area("quarantine") / "files"
    written = (files / f"{case.key}.reason.txt").read_text()
    for word in case.reason:
        assert word in reason, f"{word!r} not in the ledger reason: {reason}"
        assert word in written, f"{word!r} not in {case.key}.reason.txt: {written}"
    rows_in, loaded, rejected, duplicates = (
        n or 0 for n in (entry.rows_in, entry.rows_loaded, entry.rows_rejected, entry.duplicates)
    )
    assert loaded == 0 and rows_in == loaded + rejected + duplicates
    assert not (lake.area("processed") / f"{entry.file_id}.parquet").exists()
    assert not (lake.area("quarantine") / "rows" / f"{entry.file_id}.parquet").exists()
    if case.during is None:
        assert (files / case.key).read_bytes() == original
        assert lake.landing.read(case.key) is None
    else:
        assert not (files / case.key).exists(), "the new content was moved away with the old version"
        assert lake.landing.read(case.key) not in (None, original)


def _assert_loaded(case: BadCase, lake: Lake, entry: LedgerEntry, original: bytes) -> None:
    counts = (entry.rows_in, entry.rows_loaded, entry.rows_rejected, entry.duplicates)
    assert counts == (case.rows_in, case.loaded, case.rejected, case.duplicates)
    assert entry.rows_in == entry.rows_loaded + entry.rows_rejected + entry.duplicates
    rejected_file = lake.area("quarantine") / "rows" / f"{entry.file_id}.parquet"
    if case.rejected:
        rejected = pl.read_parquet(rejected_file)
        assert rejected.height == case.rejected
        assert rejected["_reason"].null_count() == 0 and rejected["_line"].null_count() == 0
        reasons = list(rejected["_reason"])
        assert all(0 < len(r) <= MAX_REASON_CHARS for r in reasons), [r[:200] for r in reasons]
        joined = "\n".join(reasons)
        for word in case.reason:
            assert word in joined, f"{word!r} not in the rejected rows' reasons: {joined[:2000]}"
    else:
        assert not case.reason, "a case without rejected rows cannot expect reasons"
        assert not rejected_file.exists()
    assert lake.landing.read(case.key) is None
    assert (lake.area("archive") / case.key).read_bytes() == original


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_bad_input(case: BadCase, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    run_case(case, Lake(tmp_path, Landing(tmp_path)), monkeypatch)


def _next_run_loads_the_new_version(case: BadCase, lake: Lake, pipeline: FeedPipeline) -> None:
    new = lake.landing.read(case.key)
    summary = FeedPipeline(pipeline.feed, lake.settings).run_once()
    assert summary.files == {case.key: "loaded"}, summary.errors
    versions = sorted((e.version, e.state.value, e.rows_loaded) for e in pipeline.ledger.entries("corpus"))
    assert versions == [(1, "quarantined", None), (2, "loaded", case.next_loaded)]
    assert lake.table_rows() == case.next_loaded
    assert (lake.area("archive") / case.key).read_bytes() == new
    assert lake.landing.read(case.key) is None


def test_changed_file_loads_as_the_next_version(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """After the changed-while-read quarantine, the next run registers the new content and loads it."""
    case = BY_NAME["changed_while_read"]
    lake = Lake(tmp_path, Landing(tmp_path))
    _, pipeline = run_case(case, lake, monkeypatch)
    _next_run_loads_the_new_version(case, lake, pipeline)


@pytest.mark.parametrize("name", S3_CASES)
def test_bad_input_on_s3(
    name: str, s3_bucket: tuple[Any, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    case = BY_NAME[name]
    lake = Lake(tmp_path, S3Landing(*s3_bucket))
    _, pipeline = run_case(case, lake, monkeypatch)
    if case.during is not None:
        _next_run_loads_the_new_version(case, lake, pipeline)


def test_file_gone_after_read_still_loads(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A file that disappears once read (archived by a concurrent run, or deleted) is not 'changed':
    what was read is the registered version, and the ledger decides whether it still needs loading."""
    case = BY_NAME["header_only"]
    lake = Lake(tmp_path, Landing(tmp_path))
    (lake.landing.folder / case.key).write_text("\n".join([HEADER, "1,a,1.00,1,2024-01-02"]) + "\n")
    age(lake.landing.folder / case.key)
    real = objects.transform_file

    def transform_then_delete(feed: Feed, source: Path, clean: Path, rejected: Path) -> Any:
        result = real(feed, source, clean, rejected)
        Path(source).unlink()
        return result

    monkeypatch.setattr(objects, "transform_file", transform_then_delete)
    pipeline = FeedPipeline(lake.feed(case), lake.settings)

    assert pipeline.run_once().files == {case.key: "loaded"}
    assert lake.table_rows() == 1
    assert not (lake.area("quarantine") / "files" / case.key).exists()
