"""The ledger on every backend: registration by content, the sweep, state transitions, the summary."""

from __future__ import annotations

import json
import time
from datetime import UTC

import pytest

from feedline.errors import TerminalError
from feedline.ledger import TERMINAL, FileState, Ledger, LedgerEntry, file_id_of
from feedline.storage.base import ObjectInfo
from feedline.warehouse.base import Warehouse


@pytest.fixture
def ledger(any_warehouse: Warehouse) -> Ledger:
    ledger = Ledger(any_warehouse)
    ledger.ensure()
    ledger.ensure()  # idempotent
    return ledger


def obj(key: str, content: str = "v1", size: int = 10, mtime: float = 0.0) -> ObjectInfo:
    return ObjectInfo(key=key, size=size, mtime=mtime, identity=f"sha256:{content}")


def one(ledger: Ledger, file_id: str) -> LedgerEntry:
    entry = ledger.get(file_id)
    assert entry is not None
    return entry


def test_file_id_is_a_stable_hash_of_feed_key_identity_and_size() -> None:
    file_id = file_id_of("orders", "a.csv", "sha256:x", 10)
    assert len(file_id) == 32
    assert int(file_id, 16) >= 0
    assert file_id == file_id_of("orders", "a.csv", "sha256:x", 10)
    assert (
        len(
            {
                file_id,
                file_id_of("orders", "a.csv", "sha256:x", 11),
                file_id_of("other", "a.csv", "sha256:x", 10),
            }
        )
        == 3
    )


def test_register_new_known_and_new_versions(ledger: Ledger) -> None:
    first = ledger.register("orders", [obj("a.csv"), obj("b.csv"), obj("a.csv")])
    assert [(e.key, e.version, e.state) for e in first.new] == [
        ("a.csv", 1, FileState.detected),
        ("b.csv", 1, FileState.detected),
    ]
    assert first.known == []
    entry = first.new[0]
    assert entry.file_id == file_id_of("orders", "a.csv", "sha256:v1", 10)
    assert entry.attempts == 0
    assert entry.rows_in is None
    assert entry.loaded_at is None
    assert entry.detected_at.tzinfo is UTC
    assert one(ledger, entry.file_id) == entry

    again = ledger.register("orders", [obj("a.csv"), obj("b.csv")])
    assert again.new == []
    assert sorted(e.key for e in again.known) == ["a.csv", "b.csv"]
    assert len(ledger.entries("orders")) == 2

    changed = ledger.register("orders", [obj("a.csv", "v2"), obj("b.csv")])
    assert [(e.key, e.version) for e in changed.new] == [("a.csv", 2)]
    assert [e.key for e in changed.known] == ["b.csv"]
    third = ledger.register("orders", [obj("a.csv", "v1", size=11)])
    assert third.new[0].version == 3
    assert ledger.register("other", [obj("a.csv")]).new[0].version == 1


def test_register_many_objects_in_one_transaction(ledger: Ledger) -> None:
    objects = [obj(f"part/{n:04d}.csv", mtime=n) for n in range(450)]
    assert len(ledger.register("orders", objects).new) == 450
    assert len(ledger.register("orders", objects).known) == 450
    assert len(ledger.entries("orders")) == 450


def test_pending_is_oldest_first_and_excludes_terminal_states(ledger: Ledger) -> None:
    old = ledger.register("orders", [obj("z-old.csv")]).new[0]
    time.sleep(0.01)
    batch = ledger.register("orders", [obj("b.csv"), obj("a.csv"), obj("c.csv"), obj("d.csv")]).new
    ledger.register("other", [obj("x.csv")])
    ids = {e.key: e.file_id for e in batch}
    ledger.mark(ids["b.csv"], FileState.transforming)
    ledger.mark(ids["c.csv"], FileState.loaded)
    ledger.mark(ids["d.csv"], FileState.quarantined, error="bad header")
    assert [e.key for e in ledger.pending("orders")] == ["z-old.csv", "a.csv", "b.csv"]
    assert [e.file_id for e in ledger.pending("orders", limit=1)] == [old.file_id]
    assert [e.key for e in ledger.pending("other")] == ["x.csv"]


def test_mark_records_attempts_metrics_and_errors(ledger: Ledger) -> None:
    file_id = ledger.register("orders", [obj("a.csv")]).new[0].file_id
    assert ledger.mark(file_id, FileState.transforming).attempts == 1
    done = ledger.mark(file_id, FileState.transformed, rows_in=10, rows_rejected=2, duplicates=1,
                       clean_uri="/p/a.parquet", rejected_uri="/q/a.parquet")  # fmt: skip
    assert (done.rows_in, done.rows_rejected, done.duplicates, done.clean_uri) == (10, 2, 1, "/p/a.parquet")
    assert ledger.mark(file_id, FileState.transforming, error="timeout").attempts == 2
    assert one(ledger, file_id).error == "timeout"
    loading = ledger.mark(file_id, FileState.loading)
    assert loading.error == "timeout"
    assert loading.updated_at >= done.updated_at
    loaded = ledger.mark(file_id, FileState.loaded, rows_loaded=7)
    assert loaded.state is FileState.loaded
    assert loaded.rows_loaded == 7
    assert loaded.rows_in == 10
    assert loaded.loaded_at is not None
    assert loaded.error is None
    with pytest.raises(TypeError, match="unknown field"):
        ledger.mark(file_id, FileState.loaded, colour="red")
    with pytest.raises(TerminalError, match="not in the ledger"):
        ledger.mark("f" * 32, FileState.loading)


@pytest.mark.parametrize("state", [FileState.detected, FileState.quarantined, FileState.failed])
def test_loaded_is_final(ledger: Ledger, state: FileState) -> None:
    file_id = ledger.register("orders", [obj("a.csv")]).new[0].file_id
    loaded = ledger.mark(file_id, FileState.loaded, rows_loaded=3)
    with pytest.raises(TerminalError, match="is loaded; it cannot become"):
        ledger.mark(file_id, state)
    assert ledger.mark(file_id, FileState.loaded, rows_loaded=99) == loaded  # re-marking loaded is a no-op
    assert one(ledger, file_id) == loaded


@pytest.mark.parametrize("state", [FileState.transforming, FileState.transformed, FileState.loading])
def test_a_late_in_flight_mark_on_a_loaded_file_changes_nothing(ledger: Ledger, state: FileState) -> None:
    """Regression (fault suite, two `feedline run` at once): the run that lost the race marked a file
    `transformed` after the other run loaded it, got a TerminalError, and quarantined a loaded file."""
    file_id = ledger.register("orders", [obj("a.csv")]).new[0].file_id
    ledger.mark(file_id, FileState.transforming)
    loaded = ledger.mark(file_id, FileState.loaded, rows_loaded=3)
    assert ledger.mark(file_id, state, rows_in=99) == loaded
    assert one(ledger, file_id) == loaded


def test_quarantined_and_failed_files_can_be_replayed(ledger: Ledger) -> None:
    file_id = ledger.register("orders", [obj("a.csv")]).new[0].file_id
    ledger.mark(file_id, FileState.transforming)
    assert ledger.mark(file_id, FileState.quarantined, error="bad header").error == "bad header"
    with pytest.raises(TerminalError, match="replay it"):
        ledger.mark(file_id, FileState.transforming)
    assert ledger.mark(file_id, FileState.failed, error="gave up").state is FileState.failed
    replayed = ledger.mark(file_id, FileState.detected)
    assert (replayed.state, replayed.error, replayed.attempts) == (FileState.detected, None, 1)
    assert ledger.mark(file_id, FileState.transforming).attempts == 2


def test_mark_inside_a_rolled_back_transaction_leaves_no_trace(ledger: Ledger) -> None:
    file_id = ledger.register("orders", [obj("a.csv")]).new[0].file_id
    before = one(ledger, file_id)
    seen = []

    def mark_then_crash() -> None:
        with ledger.warehouse.transaction() as tx:
            seen.append(ledger.mark(file_id, FileState.loaded, tx=tx, rows_loaded=5).state)
            raise RuntimeError("load failed after the mark")

    with pytest.raises(RuntimeError, match="after the mark"):
        mark_then_crash()
    assert seen == [FileState.loaded]
    assert one(ledger, file_id) == before


def test_entries_filter_by_feed_and_state(ledger: Ledger) -> None:
    b = ledger.register("orders", [obj("a.csv"), obj("b.csv")]).new[1]
    ledger.register("other", [obj("c.csv")])
    ledger.mark(b.file_id, FileState.failed, error="x")
    assert [e.key for e in ledger.entries()] == ["a.csv", "b.csv", "c.csv"]
    assert [e.key for e in ledger.entries("orders", [FileState.failed])] == ["b.csv"]
    assert [e.key for e in ledger.entries(states=TERMINAL)] == ["b.csv"]
    assert ledger.entries(states=[]) == []


def test_summary_counts_files_rows_and_the_last_error_per_feed_and_state(ledger: Ledger) -> None:
    a, b, c, d = ledger.register("orders", [obj(k) for k in ("a.csv", "b.csv", "c.csv", "d.csv")]).new
    ledger.register("other", [obj("e.csv")])
    ledger.mark(a.file_id, FileState.loaded, rows_in=10, rows_loaded=8, rows_rejected=2)
    ledger.mark(b.file_id, FileState.loaded, rows_in=5, rows_loaded=5, rows_rejected=0)
    ledger.mark(c.file_id, FileState.quarantined, error="first problem")
    ledger.mark(d.file_id, FileState.quarantined, error="latest problem")
    zero = {"rows_in": 0, "rows_loaded": 0, "rows_rejected": 0}
    assert ledger.summary() == [
        {"feed": "orders", "state": "loaded", "files": 2, "rows_in": 15, "rows_loaded": 13,
         "rows_rejected": 2, "last_error": None},
        {"feed": "orders", "state": "quarantined", "files": 2, **zero, "last_error": "latest problem"},
        {"feed": "other", "state": "detected", "files": 1, **zero, "last_error": None},
    ]  # fmt: skip


def test_ref_is_small_and_json_able(ledger: Ledger) -> None:
    entry = ledger.register("orders", [obj("dir/a.csv")]).new[0]
    ref = entry.ref()
    assert json.loads(json.dumps(ref)) == ref
    assert ref == {"file_id": entry.file_id, "feed": "orders", "key": "dir/a.csv", "identity": "sha256:v1",
                   "size": 10, "version": 1}  # fmt: skip


def test_a_huge_error_message_is_clipped_to_fit_every_backend(ledger: Ledger) -> None:
    file_id = ledger.register("orders", [obj("a.csv")]).new[0].file_id
    stored = ledger.mark(file_id, FileState.failed, error="x" * 100_000).error
    assert stored is not None
    assert len(stored) <= 16_000
    assert stored.endswith("(message cut)")
