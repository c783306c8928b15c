"""Replay: re-open quarantined or failed files after a contract fix or an outage.

A replay does not load anything by itself. It puts each chosen file back where discovery finds it
(a quarantined raw file returns from the quarantine area to the source under its key) and marks its
ledger entry `detected`; the next run — `feedline replay` runs one at once, or the feed's DAG — then
processes it through the same exactly-once path as a new file. A file whose content can no longer be
found unchanged is skipped with the reason, never replayed from something else.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from feedline.contract import LoadMode
from feedline.ledger import FileState, LedgerEntry
from feedline.pipeline import log_state

if TYPE_CHECKING:
    from feedline.pipeline import FeedPipeline
    from feedline.storage import Storage

REPLAYABLE = (FileState.quarantined, FileState.failed)


@dataclass
class ReplayResult:
    """Entries re-opened as `detected`, and the files left as they were with the reason why."""

    reopened: list[LedgerEntry] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)


def select(
    entries: Iterable[LedgerEntry], *, since: datetime | None = None, keys: Sequence[str] | None = None
) -> list[LedgerEntry]:
    """The entries last changed at or after `since` (UTC if naive) whose key is one of `keys`."""
    if since is not None and since.tzinfo is None:
        since = since.replace(tzinfo=UTC)
    wanted = set(keys) if keys else None
    return [
        e for e in entries if (since is None or e.updated_at >= since) and (wanted is None or e.key in wanted)
    ]


def replay(
    pipeline: FeedPipeline,
    *,
    states: Iterable[FileState] = REPLAYABLE,
    since: datetime | None = None,
    keys: Sequence[str] | None = None,
) -> ReplayResult:
    """Re-open the feed's files in `states` (quarantined and failed by default) for the next run."""
    states = [FileState(s) for s in states]
    bad = [s for s in states if s not in REPLAYABLE]
    if bad:
        raise ValueError(f"only quarantined or failed files can be replayed, not {', '.join(bad)}")
    feed = pipeline.feed.name
    ledger = pipeline.ledger
    ledger.ensure()
    chosen = select(ledger.entries(feed, states), since=since, keys=keys)
    result = ReplayResult()
    if keys:
        found = {e.key for e in chosen}
        for key in keys:
            if key not in found:
                result.skipped[key] = f"no {'/'.join(states)} file of feed {feed} has this key"
    newest = _newest_versions(ledger.entries(feed))
    ordered = pipeline.feed.target.mode is not LoadMode.append
    for entry in chosen:
        label = f"{entry.key} (version {entry.version})"
        if ordered and newest.get(entry.key, entry.version) > entry.version:
            result.skipped[label] = (
                f"a newer version ({newest[entry.key]}) of this key exists; replaying the old one would "
                "overwrite newer rows"
            )
            continue
        problem = _restore(pipeline, entry)
        if problem:
            result.skipped[label] = problem
            continue
        result.reopened.append(ledger.mark(entry.file_id, FileState.detected))
        log_state(feed, entry.ref(), "detected", replay=1)
    return result


def _newest_versions(entries: Iterable[LedgerEntry]) -> dict[str, int]:
    newest: dict[str, int] = {}
    for e in entries:
        newest[e.key] = max(newest.get(e.key, 0), e.version)
    return newest


def _restore(pipeline: FeedPipeline, entry: LedgerEntry) -> str | None:
    """Put the entry's raw content back at its source key; the reason if that cannot be done safely."""
    source = pipeline.source
    here = source.info(entry.key)
    if here is not None and here.identity == entry.identity:
        return None
    if here is not None:
        return f"{source.url(entry.key)} now holds other content; it is processed as its own version"
    quarantine = pipeline.area("quarantine")
    parked = f"files/{entry.key}"
    held = _matching(quarantine, parked, entry)
    if held is None:
        return (
            f"the raw file is neither at {source.url(entry.key)} nor at {quarantine.url(parked)}; "
            "drop it into the source again to process it"
        )
    quarantine.move(held, source, entry.key)
    quarantine.delete(f"{parked}.reason.txt")
    back = source.info(entry.key)
    if back is None or back.identity != entry.identity:
        return (
            f"restored {source.url(entry.key)}, but its identity changed in the move; the next run "
            "registers it as a new version"
        )
    return None


def _matching(quarantine: Storage, parked: str, entry: LedgerEntry) -> str | None:
    """The quarantined object holding the entry's content: `parked`, or a tagged name beside it."""
    info = quarantine.info(parked)
    if info is not None and info.identity == entry.identity:
        return parked
    folder = parked.rpartition("/")[0]
    for candidate in quarantine.list(f"{folder}/*"):
        if candidate.identity == entry.identity and not candidate.key.endswith(".reason.txt"):
            return candidate.key
    return None
