"""``diff_decisions``: replay requests against two policies and list the decisions that change.

A site tests a policy change before rolling it out by replaying recorded requests (for now
a JSONL file of ``RequestSpec`` objects; later the audit log) against the old and new set.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from pacsguard.domain import AccessRequest, Decision
from pacsguard.policy.decide import DecisionPoint

__all__ = ["DecisionChange", "diff_decisions"]


@dataclass(frozen=True, slots=True)
class DecisionChange:
    """One request whose decision differs: effect, deciding rules or obligations."""

    index: int
    request: AccessRequest
    old: Decision
    new: Decision

    @property
    def effect_changed(self) -> bool:
        return self.old.effect is not self.new.effect


def diff_decisions(
    old: DecisionPoint,
    new: DecisionPoint,
    requests: Iterable[tuple[AccessRequest, datetime | None]] | Iterable[AccessRequest],
) -> list[DecisionChange]:
    """Decide each request (optionally with its recorded time) under both points; return the
    requests whose effect, rules, agreement or obligations differ, in input order."""
    changes = []
    for index, item in enumerate(requests):
        request, at = item if isinstance(item, tuple) else (item, None)
        before, after = old.decide(request, at), new.decide(request, at)
        if _summary(before) != _summary(after):
            changes.append(DecisionChange(index, request, before, after))
    return changes


def _summary(decision: Decision) -> tuple[object, ...]:
    return (decision.effect, decision.rule_ids, decision.agreement, decision.obligations)
