"""Validity periods (ISO/TS 22600-1): on assignments, delegations, agreements, links, consents."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from pacsguard.clock import utc

__all__ = ["Validity"]


@dataclass(frozen=True, slots=True)
class Validity:
    """A half-open interval [not_before, not_after); ``None`` means unbounded on that side."""

    not_before: datetime | None = None
    not_after: datetime | None = None

    def __post_init__(self) -> None:
        if self.not_before is not None:
            object.__setattr__(self, "not_before", utc(self.not_before))
        if self.not_after is not None:
            object.__setattr__(self, "not_after", utc(self.not_after))
        if self.not_before and self.not_after and self.not_after <= self.not_before:
            raise ValueError("a validity period must end after it starts")

    def contains(self, when: datetime) -> bool:
        """True when ``when`` lies inside the period (the end instant is already outside)."""
        if self.not_before is not None and when < self.not_before:
            return False
        return self.not_after is None or when < self.not_after

    def within(self, outer: Validity) -> Validity:
        """The intersection with ``outer``: a derived right never outlives its source."""
        starts = [t for t in (self.not_before, outer.not_before) if t is not None]
        ends = [t for t in (self.not_after, outer.not_after) if t is not None]
        return Validity(max(starts) if starts else None, min(ends) if ends else None)

    @classmethod
    def always(cls) -> Validity:
        return cls()
