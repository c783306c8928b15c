"""What one transform did: the row accounting every run must balance, and its cost."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

from feedline.errors import TerminalError


class InvariantError(TerminalError):
    """The row accounting did not balance: a bug, never bad data. Outputs are deleted, nothing loads."""


@dataclass(frozen=True)
class TransformResult:
    """Row counts and cost of one file's transform; `rows_in` always equals the other three row counts.

    `columns_dropped` names the file's columns the contract lacks that were left out (schema_policy
    discard, or a header field without a name)."""

    rows_in: int
    rows_out: int
    rows_rejected: int
    duplicates_dropped: int
    bytes_in: int
    seconds: float
    columns_dropped: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready mapping (for XCom, the ledger, metrics)."""
        return {**asdict(self), "columns_dropped": list(self.columns_dropped)}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TransformResult:
        """Rebuild from `to_dict` output; unknown keys are ignored so older readers keep working."""
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in d.items() if k in known}
        dropped = tuple(str(name) for name in values.pop("columns_dropped", ()))
        ints = {k: int(v) for k, v in values.items() if k != "seconds"}
        return cls(**ints, seconds=float(values["seconds"]), columns_dropped=dropped)

    @property
    def balanced(self) -> bool:
        return self.rows_in == self.rows_out + self.rows_rejected + self.duplicates_dropped
