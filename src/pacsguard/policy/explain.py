"""Explanations: for a deny, the permit rule that came closest and what it lacked; and a
plain-text rendering of any decision for the command line and policy test failures."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from pacsguard.domain import Decision, RoleRef
from pacsguard.domain.decision import AccessRequest
from pacsguard.policy.model import When

if TYPE_CHECKING:
    from pacsguard.policy.compiler import CompiledPolicy
    from pacsguard.policy.decide import Grant

__all__ = ["closest_permit", "render"]


def closest_permit(
    policy: CompiledPolicy, request: AccessRequest, when: When, grants: Sequence[Grant]
) -> tuple[str | None, list[str]]:
    """The permit rule for this study zone and action that fails the fewest requirements,
    and those requirements in words; ``(None, [])`` when no rule permits the action there."""
    roles: frozenset[RoleRef] = frozenset().union(*(g.roles for g in grants)) if grants else frozenset()
    best: tuple[str | None, list[str]] = (None, [])
    best_score = -1.0
    for compiled in policy.permits_by_zone_action.get((request.resource.zone, request.action), ()):
        lacks = [m for m in (check(request, when) for check in compiled.checks) if m is not None]
        score = float(len(lacks))
        if not compiled.rule.roles & roles:
            wanted = ", ".join(sorted(str(r) for r in compiled.rule.roles))
            lacks.insert(0, f"a role among {wanted}" + (" (through an agreement in force)" if not grants else ""))
            score += 1.5  # a missing role weighs more than a missing condition
        if best_score < 0 or score < best_score:
            best, best_score = (compiled.rule.id, lacks), score
    return best


def render(decision: Decision) -> list[str]:
    """The decision as lines of plain text, most important first."""
    lines = [f"effect: {decision.effect.value}"]
    if decision.rule_ids:
        lines.append("rules: " + ", ".join(decision.rule_ids))
    if decision.agreement:
        lines.append(f"agreement: {decision.agreement}")
    if decision.delegation:
        lines.append("delegation: " + " -> ".join(decision.delegation))
    if decision.consent:
        lines.append("consent directives: " + ", ".join(decision.consent))
    if decision.break_glass:
        lines.append(f"break-glass grant: {decision.break_glass}")
    if decision.obligations:
        lines.append("obligations: " + ", ".join(str(o) for o in decision.obligations))
    lines.extend(f"- {r.message}" for r in decision.reasons)
    if decision.closest:
        lines.append(f"closest permit: {decision.closest}, which lacks: " + "; ".join(decision.lacking or ["nothing"]))
    elif not decision.permitted:
        lines.append("no rule permits this action on studies of this zone")
    return lines
