"""What one transform did: the row accounting every run must balance, and its cost."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

from feedline.errors import TerminalError


class InvariantError(TerminalError):
    """The row accounting did not balance: a bug, never bad data. Outputs are deleted, nothing loads."""


@dataclass(frozen=True)
class TransformResult:
    """Row counts and cost of one file's transform; `rows_in` always equals the other three row counts."""

    rows_in: int
    rows_out: int
    rows_rejected: int
    duplicates_dropped: int
    bytes_in: int
    seconds: float

    def to_dict(self) -> dict[str, int | float]:
        """A JSON-ready mapping (for XCom, the ledger, metrics)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TransformResult:
        """Rebuild from `to_dict` output; unknown keys are ignored so older readers keep working."""
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in d.items() if k in known}
        ints = {k: int(v) for k, v in values.items() if k != "seconds"}
        return cls(**ints, seconds=float(values["seconds"]))

    @property
    def balanced(self) -> bool:
        return self.rows_in == self.rows_out + self.rows_rejected + self.duplicates_dropped
