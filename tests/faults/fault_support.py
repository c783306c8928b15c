"""What every fault test checks after recovery, and the tools that inject faults and recover from them.

The check is always the same: the target table holds exactly the rows a fault-free run of the same files
produces (row count, distinct keys, a checksum of every value), every ledger entry is terminal, no
staging table is left, and the lake holds no partial object.
"""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import yaml

from feedline.contract import Feed, parse_feed
from feedline.errors import TransientError
from feedline.ledger import FileState, LedgerEntry
from feedline.pipeline import FeedPipeline
from feedline.sample import write_orders_csv
from feedline.settings import Settings
from feedline.stack import free_port
from feedline.warehouse.base import Warehouse
from feedline.warehouse.dialect import FILE_ID_COLUMN
from support import REPO, age, record_outcome

T = TypeVar("T")
_MASK = (1 << 64) - 1


# --- feeds and projects --------------------------------------------------------------------------------


def orders_feed(**changes: Any) -> dict[str, Any]:
    """The repo's example feed as a mapping, with top-level sections updated (merged one level deep)."""
    raw: dict[str, Any] = yaml.safe_load((REPO / "feeds" / "orders.yaml").read_text())
    for section, value in changes.items():
        if isinstance(value, dict) and isinstance(raw.get(section), dict):
            raw[section] = {**raw[section], **value}
        else:
            raw[section] = value
    return raw


def feed_text(raw: dict[str, Any]) -> str:
    return yaml.safe_dump(raw, sort_keys=False)


@dataclass
class Project:
    """A feedline project folder (feeds/, data/) whose feeds run in this process or in subprocesses."""

    home: Path
    env: dict[str, str]
    feeds: dict[str, Feed] = field(default_factory=dict)

    @property
    def settings(self) -> Settings:
        return Settings.from_env(self.env)

    def add_feed(self, raw: dict[str, Any]) -> Feed:
        path = self.home / "feeds" / f"{raw['name']}.yaml"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(feed_text(raw))
        feed = parse_feed(raw, str(path))
        self.feeds[feed.name] = feed
        return feed

    def pipeline(self, name: str = "orders") -> FeedPipeline:
        return FeedPipeline(self.feeds[name], self.settings)

    def landing(self, name: str = "orders") -> Path:
        path = Path(self.settings.source_location(self.feeds[name].source.uri))
        path.mkdir(parents=True, exist_ok=True)
        return path


def make_project(home: Path, warehouse: str, **env: str) -> Project:
    """A project at `home` loading into `warehouse` (a DuckDB path or a postgresql:// URL)."""
    home.mkdir(parents=True, exist_ok=True)
    return Project(home, {"FEEDLINE_HOME": str(home), "FEEDLINE_WAREHOUSE": warehouse, **env})


def drop(landing: Path, name: str, *, rows: int, seed: int, start_id: int, settled: bool = True) -> int:
    """Land a sample orders file the way a writer should (hidden temporary name, then rename); returns the
    rows its transform must keep. `settled` backdates it so a sweep takes it at once."""
    partial = landing / f".{name}.part"
    stats = write_orders_csv(partial, rows=rows, seed=seed, start_id=start_id)
    os.replace(partial, landing / name)
    if settled:
        age(landing / name)
    return stats.clean


def redrop(landing: Path, name: str, content: bytes) -> None:
    """Deliver the same bytes again under `name`: a new file event for the same content."""
    partial = landing / f".{name}.part"
    partial.write_bytes(content)
    os.replace(partial, landing / name)


# --- what the table holds ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Snapshot:
    """A table's content in three numbers: rows, distinct primary keys, an order-free checksum of values."""

    rows: int
    keys: int
    checksum: str


def row_hash(row: Sequence[Any]) -> int:
    """A row's hash: both drivers return the same Python types for the same SQL types (int, str,
    Decimal at the column's scale, naive datetime, bool), and Python hashes numerically equal values
    alike. Salted per process: compare checksums within one test process only."""
    return hash(tuple(row)) & _MASK


def snapshot(warehouse: Warehouse, feed: Feed, file_ids: Sequence[str] | None = None) -> Snapshot:
    """The feed's target table (or the rows the files `file_ids` loaded) as a `Snapshot`, in batches."""
    d = warehouse.dialect
    table = d.table(warehouse.target(feed))
    cols = d.columns([c.name for c in feed.columns])
    keys = d.columns(list(feed.primary_key) or [c.name for c in feed.columns])
    where, params = "", list(file_ids or ())
    if file_ids is not None:
        where = f" WHERE {d.quote(FILE_ID_COLUMN)} IN ({d.params(len(params))})" if params else " WHERE 1 = 0"
    total, checksum = 0, 0
    with warehouse.transaction() as tx:
        distinct = tx.scalar(
            f"SELECT COUNT(*) FROM (SELECT DISTINCT {keys} FROM {table}{where}) AS k", params
        )
        tx.execute(f"SELECT {cols} FROM {table}{where}", params)
        while batch := tx.cursor.fetchmany(50_000):
            total += len(batch)
            checksum = (checksum + sum(map(row_hash, batch))) & _MASK
    return Snapshot(total, int(distinct), f"{checksum:016x}")


def table_counts(warehouse: Warehouse, feed: Feed) -> tuple[int, int]:
    """(rows, distinct primary keys) of the feed's whole target table, counted by the warehouse."""
    d = warehouse.dialect
    table, keys = d.table(warehouse.target(feed)), d.columns(list(feed.primary_key))
    with warehouse.transaction() as tx:
        rows = tx.scalar(f"SELECT COUNT(*) FROM {table}")
        distinct = tx.scalar(f"SELECT COUNT(*) FROM (SELECT DISTINCT {keys} FROM {table}) AS k")
    return int(rows), int(distinct)


def parquet_snapshot(feed: Feed, paths: Sequence[Path]) -> Snapshot:
    """The rows of clean Parquet files as a `Snapshot`: what a table loaded from them holds when no two
    files share a key."""
    import duckdb

    cols = ", ".join(f'"{c.name}"' for c in feed.columns)
    keys = ", ".join(f'"{k}"' for k in feed.primary_key)
    files = [str(p) for p in paths]
    total, checksum = 0, 0
    with duckdb.connect() as con:
        distinct = con.execute(f"SELECT COUNT(*) FROM (SELECT DISTINCT {keys} FROM read_parquet(?))", [files])
        keys_count = int(distinct.fetchone()[0])  # type: ignore[index]
        con.execute(f"SELECT {cols} FROM read_parquet(?)", [files])
        while batch := con.fetchmany(50_000):
            total += len(batch)
            checksum = (checksum + sum(map(row_hash, batch))) & _MASK
    return Snapshot(total, keys_count, f"{checksum:016x}")


def control_snapshot(feed: Feed, batches: Sequence[Sequence[Path]], work: Path) -> Snapshot:
    """The table a fault-free run makes of the same files: each batch landed and run in turn, in-process,
    into a DuckDB of its own. This is the oracle every fault test compares its warehouse with."""
    raw = feed.model_dump(mode="json", by_alias=True)
    raw["source"] = {"uri": "data/landing/control", "pattern": feed.source.pattern, "settle_seconds": 0}
    project = make_project(work, str(work / "control.duckdb"))
    project.feeds[feed.name] = parse_feed(raw, "control feed")
    pipeline = project.pipeline(feed.name)
    landing = project.landing(feed.name)
    for batch in batches:
        for path in batch:
            shutil.copyfile(path, landing / path.name)
        summary = pipeline.run_once()
        assert set(summary.files.values()) <= {"loaded"}, f"the control run itself failed: {summary}"
    return snapshot(pipeline.warehouse, feed)


# --- the invariants after recovery ---------------------------------------------------------------------


def staging_tables(warehouse: Warehouse) -> list[str]:
    """Every table anywhere in the warehouse whose name is a staging table's (stg_<feed>_<file id>)."""
    with warehouse.transaction() as tx:
        tx.execute(
            "SELECT table_schema, table_name FROM information_schema.tables WHERE table_name LIKE 'stg%'"
        )
        return sorted(f"{schema}.{name}" for schema, name in tx.fetchall())


def local_objects(root: Path) -> list[str]:
    """Every file under a local folder, hidden and temporary ones included (listings skip those)."""
    if not root.exists():
        return []
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())


def s3_objects(client: Any, uri: str) -> list[str]:
    """Every object under an s3:// prefix, plus `<key> (unfinished multipart upload)` entries."""
    bucket, _, prefix = uri.removeprefix("s3://").partition("/")
    prefix = prefix.rstrip("/") + "/"
    found = [
        o["Key"][len(prefix) :]
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        for o in page.get("Contents", ())
    ]
    uploads = client.list_multipart_uploads(Bucket=bucket, Prefix=prefix).get("Uploads", ())
    found += [f"{u['Key'][len(prefix) :]} (unfinished multipart upload)" for u in uploads]
    return sorted(found)


def area_objects(pipeline: FeedPipeline, area: str, s3_client: Any = None) -> list[str]:
    location = pipeline.settings.area(area, pipeline.feed.name)
    if location.startswith("s3://"):
        return s3_objects(s3_client, location)
    return local_objects(Path(location))


def source_objects(pipeline: FeedPipeline, s3_client: Any = None) -> list[str]:
    location = pipeline.settings.source_location(pipeline.feed.source.uri)
    if location.startswith("s3://"):
        return s3_objects(s3_client, location)
    return local_objects(Path(location))


def assert_settled(
    pipeline: FeedPipeline,
    expected: Snapshot,
    *,
    files: int,
    s3_client: Any = None,
    scratch_clean: bool = True,
    only_keys: Sequence[str] | None = None,
) -> list[LedgerEntry]:
    """After recovery: exact rows, `files` ledger entries all loaded, no staging table, the processed area
    holding exactly one complete Parquet per loaded file, the landing area empty, no raw file quarantined,
    every raw file archived and (local lake) no scratch file left.

    With `only_keys`, `expected` is the rows of those files only (a table shared with earlier tests whose
    files hold other keys); the whole table must then still hold each primary key once."""
    feed = pipeline.feed
    entries = pipeline.ledger.entries(feed.name)
    if only_keys is None:
        assert snapshot(pipeline.warehouse, feed) == expected
    else:
        chosen = [e.file_id for e in entries if e.key in only_keys]
        assert snapshot(pipeline.warehouse, feed, chosen) == expected
        rows, keys = table_counts(pipeline.warehouse, feed)
        assert rows == keys == sum(e.rows_loaded or 0 for e in entries)
    assert [(e.key, e.state) for e in entries if e.state is not FileState.loaded] == []
    assert len(entries) == files
    assert staging_tables(pipeline.warehouse) == []
    assert area_objects(pipeline, "processed", s3_client) == sorted(f"{e.file_id}.parquet" for e in entries)
    _assert_outputs_complete(pipeline, entries)
    assert source_objects(pipeline, s3_client) == []
    quarantined = [o for o in area_objects(pipeline, "quarantine", s3_client) if o.startswith("files/")]
    assert quarantined == [], "no raw file was set aside"
    archived = {o.identity for o in pipeline.area("archive").list("**")}
    assert {e.identity for e in entries} <= archived, "every loaded raw file is kept in the archive"
    if scratch_clean and not pipeline.settings.area_root("processed").startswith("s3://"):
        scratch = Path(pipeline.settings.area_root("processed")).parent / ".tmp"
        assert local_objects(scratch) == [], "no scratch file is left in the lake's .tmp"
    _record_status(entries)
    return entries


def _record_status(entries: Sequence[LedgerEntry]) -> None:
    """What `feedline status --files` says about each file after recovery, for docs/reliability.md."""
    test = os.environ.get("PYTEST_CURRENT_TEST", "").rsplit(" ", 1)[0]
    record_outcome(
        "faults",
        test,
        status=[f"{e.key} (version {e.version}): {e.state.value} — {e.why()}" for e in entries],
    )


def _assert_outputs_complete(pipeline: FeedPipeline, entries: Iterable[LedgerEntry]) -> None:
    """Each clean Parquet is whole: it opens and holds the rows the ledger says were loaded from it."""
    import tempfile

    import pyarrow.parquet as pq

    processed = pipeline.area("processed")
    with tempfile.TemporaryDirectory(prefix="fault-check-") as tmp:
        for entry in entries:
            key = f"{entry.file_id}.parquet"
            path = processed.local_path(key) or processed.download(key, Path(tmp) / key)
            assert pq.ParquetFile(path).metadata.num_rows == entry.rows_loaded, entry.key


# --- recovery ------------------------------------------------------------------------------------------


@dataclass
class RetryLog:
    """The transient errors a retrying run met on its way, by step."""

    errors: list[tuple[str, str]] = field(default_factory=list)

    def retry(self, step: str, fn: Callable[[], T], *, attempts: int = 15, delay: float = 1.0) -> T:
        """Run `fn`; on a TransientError wait `delay` and run it again, as an Airflow task retry would."""
        for attempt in range(1, attempts + 1):
            try:
                return fn()
            except TransientError as exc:
                self.errors.append((step, str(exc)))
                if attempt == attempts:
                    raise
                time.sleep(delay)
        raise AssertionError("unreachable")


def run_with_retries(pipeline: FeedPipeline, log: RetryLog | None = None) -> RetryLog:
    """One run the way the feed's DAG does it — discover, then per file transform and load, then archive —
    each step retried on a transient error like its Airflow task (the load retry reuses the transform's
    result, as the task's XCom would)."""
    log = log or RetryLog()
    refs = log.retry("discover", lambda: pipeline.discover().refs)
    for ref in refs:
        result = log.retry(f"transform {ref['key']}", lambda ref=ref: pipeline.transform(ref))
        log.retry(f"load {ref['key']}", lambda ref=ref, result=result: pipeline.load(ref, result))
    log.retry("archive", pipeline.archive)
    return log


def wait_for(condition: Callable[[], T], timeout: float, what: str, interval: float = 0.5) -> T:
    """Poll until `condition()` is truthy and return it; fail naming `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not after {timeout:.0f}s")
        time.sleep(interval)


# --- an S3 server that can go down -----------------------------------------------------------------------


class StoppableMotoServer:
    """moto's threaded S3 server on a fixed port that can really go down and come back.

    `stop()` closes the listening socket and drops every open connection, as a crashed server would
    (moto's own `stop()` leaves both open, so keep-alive clients would never notice); `start()` serves again
    on the same port with the same buckets and objects, because moto keeps them in this process.
    """

    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self._server: Any = None
        self._thread: threading.Thread | None = None
        self._connections: set[socket.socket] = set()
        self._lock = threading.Lock()

    def start(self) -> None:
        from moto.moto_server.werkzeug_app import (
            DomainDispatcherApplication,
            MotoRequestHandler,
            create_backend_app,
        )
        from werkzeug.serving import make_server

        connections, lock = self._connections, self._lock

        class Tracked(MotoRequestHandler):
            def setup(self) -> None:
                super().setup()
                with lock:
                    connections.add(self.connection)

            def finish(self) -> None:
                with lock:
                    connections.discard(self.connection)
                super().finish()

        app = DomainDispatcherApplication(create_backend_app)
        self._server = make_server("127.0.0.1", self.port, app, threaded=True, request_handler=Tracked)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        with self._lock:
            dropped = list(self._connections)
        for conn in dropped:
            with suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        assert self._thread is not None
        self._thread.join(timeout=10)
        self._server = None
