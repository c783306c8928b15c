"""One feed's steps — discover, transform, load, quarantine, archive, clean up — free of Airflow.

The Airflow tasks and the `feedline run` command both call these; each step reads and writes the
ledger, so any step can be retried or re-run and the ledger decides what is left to do.
"""

from __future__ import annotations

import json
import logging
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from feedline.contract import Feed
from feedline.errors import TerminalError
from feedline.settings import Settings

if TYPE_CHECKING:
    from feedline.ledger import Ledger
    from feedline.storage import Storage
    from feedline.warehouse import Warehouse

log = logging.getLogger(__name__)

#: Runs the transform elsewhere (e.g. as a Lambda): (feed, ref, source, processed, quarantine URIs) -> result.
Transformer = Callable[[Feed, dict[str, Any], str, str, str], dict[str, Any]]


@dataclass
class Discovery:
    """What a sweep found: refs of every unfinished file (new or left by an earlier run)."""

    refs: list[dict[str, Any]] = field(default_factory=list)
    new: int = 0
    redelivered: int = 0


@dataclass
class RunSummary:
    """The outcome of processing one feed once, per file."""

    feed: str
    files: dict[str, str] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    rows_loaded: int = 0
    rows_rejected: int = 0


def log_state(feed: str, ref: dict[str, Any], state: str, **fields: Any) -> None:
    """One structured line per file state change, so a log search answers 'what happened to this file'.

    The line is logfmt: `feedline.file feed=… key=… version=… state=… [field=…]`, a value holding a
    space, a quote, `=` or a control character written as a double-quoted string (JSON escapes), so a
    key such as `2024 orders.csv` or an error message parses back whole."""
    pairs = {"feed": feed, "key": ref["key"], "version": ref.get("version"), "state": state, **fields}
    log.info(
        "feedline.file %s", " ".join(f"{k}={logfmt_value(v)}" for k, v in pairs.items() if v is not None)
    )


def logfmt_value(value: Any) -> str:
    """`value` as a logfmt value: bare when it is a plain word, else a JSON string."""
    text = str(value)
    if text and not any(c in text for c in ' "=\\') and text.isprintable():
        return text
    quoted = json.dumps(text, ensure_ascii=False)  # escapes quotes, backslashes and C0 controls
    return "".join(c if c.isprintable() else json.dumps(c)[1:-1] for c in quoted)  # the rest: JSON escapes


SCRATCH_PREFIX = "feedline-scratch-"
# A scratch directory untouched this long belongs to a killed process (a live step writes into its own
# within seconds of starting, and no step runs for a day).
SCRATCH_MAX_AGE = 24 * 3600.0


class FeedPipeline:
    """The steps of one feed against its source, lake areas, ledger and warehouse."""

    def __init__(
        self,
        feed: Feed,
        settings: Settings | None = None,
        warehouse: Warehouse | None = None,
        *,
        transformer: Transformer | None = None,
        aws_conn_id: str | None = None,
    ) -> None:
        self.feed = feed
        self.settings = settings or Settings.from_env()
        self._warehouse = warehouse
        self._transformer = transformer
        self._aws_conn_id = aws_conn_id
        self._areas: dict[str, Storage] = {}

    # --- wiring ------------------------------------------------------------------------------------

    @cached_property
    def source(self) -> Storage:
        from feedline.storage import open_storage

        location = self.settings.source_location(self.feed.source.uri)
        return open_storage(
            location, settle_seconds=self.feed.source.settle_seconds, aws_conn_id=self._aws_conn_id
        )

    def area(self, name: str) -> Storage:
        """The feed's lake area `name` (processed, quarantine, archive …), opened once per pipeline: an S3
        area's boto3 client is built on first use and then shared, as boto3 clients are thread-safe."""
        from feedline.storage import open_storage

        if name not in self._areas:
            self._areas[name] = open_storage(
                self.settings.area(name, self.feed.name), settle_seconds=0, aws_conn_id=self._aws_conn_id
            )
        return self._areas[name]

    @cached_property
    def warehouse(self) -> Warehouse:
        if self._warehouse is None:
            from feedline.warehouse import connect_warehouse

            self._warehouse = connect_warehouse(self.settings.warehouse)
        return self._warehouse

    @cached_property
    def ledger(self) -> Ledger:
        from feedline.ledger import Ledger

        return Ledger(self.warehouse)

    def _scratch_root(self) -> Path | None:
        """Where scratch directories go: inside the lake when it is local (the same filesystem as the
        areas they fill), else the system's temporary directory (None)."""
        processed = self.settings.area_root("processed")
        return None if processed.startswith("s3://") else Path(processed).parent / ".tmp"

    @contextmanager
    def _workdir(self) -> Iterator[Path]:
        """A scratch directory, removed when the block ends (`sweep_scratch` removes those of killed
        processes)."""
        base = self._scratch_root()
        if base is not None:
            base.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix=f"{SCRATCH_PREFIX}{self.feed.name}-", dir=base) as tmp:
            yield Path(tmp)

    def sweep_scratch(self, older_than: float = SCRATCH_MAX_AGE) -> list[Path]:
        """Remove this feed's scratch directories left by killed processes: untouched (the directory and
        what it holds directly) for `older_than` seconds. Returns those removed."""
        import shutil

        base = self._scratch_root()
        root = Path(tempfile.gettempdir()) if base is None else base
        cutoff = time.time() - older_than
        removed = []
        for path in root.glob(f"{SCRATCH_PREFIX}{self.feed.name}-*"):
            try:
                touched = max([path.stat().st_mtime, *(p.stat().st_mtime for p in path.iterdir())])
            except OSError:
                continue  # gone meanwhile, or not a directory
            if touched < cutoff:
                shutil.rmtree(path, ignore_errors=True)
                removed.append(path)
        if removed:
            log.info("Removed %d stale scratch directories of feed %s", len(removed), self.feed.name)
        return removed

    def _local(self, storage: Storage, key: str, workdir: Path) -> Path:
        path = storage.local_path(key)
        return path if path is not None else storage.download(key, workdir / Path(key).name)

    # --- steps -------------------------------------------------------------------------------------

    def discover(self) -> Discovery:
        """Register complete files of the source in the ledger and return every unfinished one."""
        self.ledger.ensure()
        self.warehouse.ensure_table(self.feed)
        self.sweep_scratch()
        objects = list(self.source.list(self.feed.source.pattern))
        registration = self.ledger.register(self.feed.name, objects)
        for entry in registration.new:
            log_state(self.feed.name, entry.ref(), "detected", size=entry.size, identity=entry.identity)
        pending = self.ledger.pending(self.feed.name, limit=self.feed.max_files_per_run)
        return Discovery(
            refs=[e.ref() for e in pending], new=len(registration.new), redelivered=len(registration.known)
        )

    def transform(self, ref: dict[str, Any]) -> dict[str, Any]:
        """Clean one file into Parquet (and rejected rows); raises TerminalError for a bad file."""
        from feedline.ledger import FileState
        from feedline.transform.objects import transform_object

        file_id = ref["file_id"]
        entry = self.ledger.get(file_id)
        if entry is not None and entry.state is FileState.loaded:
            return {"file_id": file_id, "already_loaded": True}
        self.ledger.mark(file_id, FileState.transforming)
        log_state(self.feed.name, ref, "transforming")
        before = self._stat_source(ref["key"])
        if self._transformer is not None:
            result = self._transformer(
                self.feed,
                ref,
                self.settings.source_location(self.feed.source.uri),
                self.settings.area("processed", self.feed.name),
                self.settings.area("quarantine", self.feed.name),
            )
        else:
            with self._workdir() as work:
                result = transform_object(
                    self.feed,
                    self.source,
                    ref["key"],
                    self.area("processed"),
                    self.area("quarantine"),
                    file_id,
                    workdir=work,
                )
        self._check_unchanged(ref, entry.detected_at.timestamp() if entry else None, before)
        self.ledger.mark(
            file_id,
            FileState.transformed,
            rows_in=result["rows_in"],
            rows_rejected=result["rows_rejected"],
            duplicates=result["duplicates_dropped"],
            clean_uri=result["clean_uri"],
            rejected_uri=result["rejected_uri"],
        )
        log_state(
            self.feed.name,
            ref,
            "transformed",
            rows_in=result["rows_in"],
            rows_out=result["rows_out"],
            rows_rejected=result["rows_rejected"],
            duplicates=result["duplicates_dropped"],
            seconds=round(result["seconds"], 3),
        )
        return result

    def _stat_source(self, key: str) -> tuple[int, int, int] | None:
        """(size, mtime_ns, inode) of a local source file, or None (remote, or gone)."""
        path = self.source.local_path(key)
        try:
            st = path.stat() if path is not None else None
        except OSError:
            return None
        return None if st is None else (st.st_size, st.st_mtime_ns, st.st_ino)

    def _check_unchanged(
        self,
        ref: dict[str, Any],
        detected_at: float | None,
        before: tuple[int, int, int] | None,
    ) -> None:
        """Raise `BadFileError` if what the transform read may not be the version the ledger registered.

        A local file is stat'ed before and after the transform; only when the two differ, its size is
        not the registered one, or it was modified after its registration is its SHA-256 computed again
        and compared. Hashing every file again would cost a second full read (~10% of a transform) for
        a rare event; hashing while reading is impossible when polars reads the file in place. A remote
        object's identity (its ETag) is one HEAD request, so it is always compared. An object gone
        since (archived by a concurrent run that loaded it, or deleted) leaves the decision to the ledger.
        """
        key = ref["key"]
        after = self._stat_source(key)
        if (
            after is not None
            and after == before
            and after[0] == ref["size"]
            and (detected_at is None or after[1] <= detected_at * 1e9)
        ):
            return
        now = self.source.info(key)
        if now is None:
            log.info("%s is gone since it was read (moved by another run, or deleted)", key)
            return
        if now.identity == ref["identity"] and now.size == ref["size"]:
            return
        from feedline.errors import BadFileError

        self._delete_outputs(ref["file_id"])
        raise BadFileError(
            f"{self.source.url(key)}: changed while being read (registered as {ref['identity']}, "
            f"{ref['size']} bytes; now {now.identity}, {now.size} bytes): version {ref.get('version')} "
            "is set aside unloaded and the new content is processed as the next version. If the writer "
            "was still busy, have it write under a temporary name (e.g. .part) and rename when done, or "
            "raise source.settle_seconds"
        )

    def load(self, ref: dict[str, Any], result: dict[str, Any]) -> dict[str, Any]:
        """Load one transformed file; the load and its ledger `loaded` mark commit together."""
        from feedline.ledger import FileState

        file_id = ref["file_id"]
        entry = self.ledger.get(file_id)
        if result.get("already_loaded") or (entry is not None and entry.state is FileState.loaded):
            log.info("%s is already loaded; nothing to do", ref["key"])
            return {"file_id": file_id, "rows_loaded": 0, "already_loaded": True}
        self.ledger.mark(file_id, FileState.loading)
        log_state(self.feed.name, ref, "loading")
        started = time.monotonic()
        with self._workdir() as work:
            parquet = self._local(self.area("processed"), result["clean_key"], work)
            outcome = self.warehouse.load(
                self.feed,
                file_id,
                parquet,
                rows_in=int(result["rows_in"]),
                rows_rejected=int(result["rows_rejected"]),
                duplicates=int(result["duplicates_dropped"]),
                clean_uri=result["clean_uri"],
                rejected_uri=result.get("rejected_uri") or "",
            )
        seconds = round(time.monotonic() - started, 3)
        log_state(
            self.feed.name,
            ref,
            "loaded",
            rows=outcome.rows_loaded,
            seconds=seconds,
            already_loaded=outcome.already_loaded or None,
        )
        return {
            "file_id": file_id,
            "rows_loaded": outcome.rows_loaded,
            "already_loaded": outcome.already_loaded,
            "seconds": seconds,
        }

    def quarantine(self, ref: dict[str, Any], reason: str) -> None:
        """Set a bad file aside with its reason: raw file to the quarantine area, ledger `quarantined`.

        The raw file moves only while it still holds the quarantined version: new content that landed
        under the same key (e.g. a file that changed while being read) stays for the next run.
        """
        from feedline.ledger import FileState
        from feedline.storage.base import ObjectNotFoundError

        file_id, key = ref["file_id"], ref["key"]
        quarantine = self.area("quarantine")
        current = self.source.info(key)
        if current is not None and (current.identity, current.size) == (ref["identity"], ref["size"]):
            try:
                self.source.move(key, quarantine, f"files/{key}")
            except ObjectNotFoundError:
                log.info("%s was moved away meanwhile (by a concurrent run); nothing to move", key)
        elif current is not None:
            log.warning("%s holds newer content than the quarantined version; left for the next run", key)
        quarantine.write_bytes(f"files/{key}.reason.txt", f"{reason}\n".encode())
        self._delete_outputs(file_id)
        self.ledger.mark(file_id, FileState.quarantined, error=reason)
        log_state(self.feed.name, ref, "quarantined", error=reason.splitlines()[0] if reason else None)

    def fail(self, ref: dict[str, Any], error: str) -> None:
        """Record that retries are exhausted; the raw file stays where it is for a replay."""
        from feedline.ledger import TERMINAL, FileState

        entry = self.ledger.get(ref["file_id"])
        if entry is None or entry.state in TERMINAL:
            return
        self.ledger.mark(ref["file_id"], FileState.failed, error=error)
        log_state(self.feed.name, ref, "failed", error=error.splitlines()[0] if error else None)

    def archive(self) -> dict[str, int]:
        """Tidy the landing area: loaded files go to the archive, re-deliveries of bad ones to quarantine.

        Matching is by content (the ledger's identity), so a new version that landed under the same
        key after the sweep stays in place for the next run.
        """
        from feedline.ledger import FileState, file_id_of
        from feedline.storage import ObjectNotFoundError

        moved = {"archived": 0, "quarantined": 0}
        archive, quarantine = self.area("archive"), self.area("quarantine")
        listed = list(self.source.list(self.feed.source.pattern))
        with self.warehouse.session():  # one connection for the lookups, not one each
            entries = [
                (obj, self.ledger.get(file_id_of(self.feed.name, obj.key, obj.identity, obj.size)))
                for obj in listed
            ]
        for obj, entry in entries:
            if entry is None:
                continue
            try:
                if entry.state is FileState.loaded:
                    self.source.move(obj.key, archive, obj.key)
                    moved["archived"] += 1
                elif entry.state is FileState.quarantined:
                    self.source.move(obj.key, quarantine, f"files/{obj.key}")
                    moved["quarantined"] += 1
            except ObjectNotFoundError:  # another run of the feed moved it since the listing
                log.info("%s of feed %s was moved by another run meanwhile", obj.key, self.feed.name)
        return moved

    def cleanup(self, refs: list[dict[str, Any]], crashed: dict[str, str] | None = None) -> dict[str, str]:
        """After a failure: settle this run's failed files and remove what they left behind.

        `crashed` maps file ids to the step whose task died without recording anything (killed, out of
        memory, lost heartbeat) on its last attempt: those entries are still in flight in the ledger and
        are marked `failed` here. For every quarantined or failed file the staging table is dropped and
        partial outputs deleted; each file is handled on its own, so one problem never stops the rest.
        Files still in flight are left alone. Returns {key: state and error} of the files that did not load.
        """
        from feedline.ledger import FileState

        crashed = crashed or {}
        problems: dict[str, str] = {}
        for ref in refs:
            try:
                entry = self.ledger.get(ref["file_id"])
                if entry is not None and not entry.terminal and ref["file_id"] in crashed:
                    step = crashed[ref["file_id"]]
                    self.fail(
                        ref,
                        f"{step} of {self.feed.name}/{ref['key']} failed: the task process died (killed, out "
                        f"of memory or lost heartbeat) on its last attempt — `feedline replay --feed "
                        f"{self.feed.name} --state failed` once the cause is gone",
                    )
                    entry = self.ledger.get(ref["file_id"])
                if entry is None or entry.state not in (FileState.quarantined, FileState.failed):
                    continue
                self.warehouse.drop_staging(self.feed, ref["file_id"])
                if entry.state is FileState.failed:
                    self._delete_outputs(ref["file_id"])
                problems[ref["key"]] = f"{entry.state.value}: {entry.error or 'no error recorded'}"
            except Exception as exc:  # keep going: the other files' cleanup must still happen
                log.exception("cleanup of %s/%s failed", self.feed.name, ref["key"])
                problems[ref["key"]] = f"cleanup failed ({type(exc).__name__}: {exc}); state unknown"
        return problems

    def _delete_outputs(self, file_id: str) -> None:
        """Remove a file's transform outputs (clean Parquet, rejected rows): it did not load, and a
        replay writes them again."""
        from feedline.transform.objects import clean_key, rejected_key

        self.area("processed").delete(clean_key(file_id))
        self.area("quarantine").delete(rejected_key(file_id))

    def summarize(self, refs: list[dict[str, Any]]) -> dict[str, Any]:
        """The fate of each file of a run, read back from the ledger."""
        files: dict[str, Any] = {}
        totals = {"rows_in": 0, "rows_loaded": 0, "rows_rejected": 0, "duplicates": 0}
        for ref in refs:
            entry = self.ledger.get(ref["file_id"])
            if entry is None:
                continue
            files[entry.key] = {
                "state": entry.state.value,
                "rows_loaded": entry.rows_loaded,
                "rows_rejected": entry.rows_rejected,
                "error": entry.error,
            }
            for name in totals:
                totals[name] += getattr(entry, name) or 0
        return {"feed": self.feed.name, "files": files, **totals}

    def run_once(self) -> RunSummary:
        """Process everything waiting, in this process: the scheduler-free path of `feedline run`."""
        from feedline.errors import TransientError, classify, failure_message

        summary = RunSummary(feed=self.feed.name)
        discovery = self.discover()
        for ref in discovery.refs:
            step = "transform"
            try:
                result = self.transform(ref)
                step = "load"
                loaded = self.load(ref, result)
                summary.rows_loaded += int(loaded["rows_loaded"])
                summary.rows_rejected += int(result.get("rows_rejected", 0))
                summary.files[ref["key"]] = "loaded"
            except Exception as exc:
                family = classify(exc)
                if family is None and not isinstance(exc, OSError | TransientError):
                    raise  # a bug, not the file's fault: let it surface with its traceback
                message = failure_message(self.feed.name, ref["key"], step, exc)
                if isinstance(family, TerminalError):
                    self.quarantine(ref, message)
                    summary.files[ref["key"]] = "quarantined"
                else:
                    self.fail(ref, message)
                    summary.files[ref["key"]] = "failed"
                summary.errors[ref["key"]] = message
        self.archive()
        return summary
