"""Explanations: for a deny, the permit rule that came closest and what it lacked; and a
plain-text rendering of any decision for the command line and policy test failures."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from pacsguard.domain import Decision
from pacsguard.domain.decision import AccessRequest
from pacsguard.policy.model import Check, When

if TYPE_CHECKING:
    from pacsguard.policy.compiler import CompiledPolicy, CompiledRule
    from pacsguard.policy.decide import Grant

__all__ = ["closest_permit", "render"]


def closest_permit(
    policy: CompiledPolicy, request: AccessRequest, when: Callable[[], When], grants: Sequence[Grant]
) -> tuple[str | None, list[str]]:
    """The permit rule for this study zone and action that fails the fewest requirements,
    and those requirements in words; ``(None, [])`` when no rule permits the action there.

    Rules open to the subject's roles come first (they lack only conditions); only when
    there are none are the other rules scanned, stopping at the first that lacks only a role.
    """
    roles: frozenset[int] = frozenset().union(*(g.roles for g in grants)) if grants else frozenset()
    zone, action = request.resource.zone, request.action
    best: CompiledRule | None = None
    best_failing: list[Check] = []
    by_role = policy.permits.get((zone, action), {})
    for role in roles:
        for compiled in by_role.get(role, ()):
            failing = compiled.failing(request, when() if compiled.needs_when else None)
            if best is None or len(failing) < len(best_failing):
                best, best_failing = compiled, failing
            if len(best_failing) <= 1:  # nothing that did not match can do better
                break
    if best is not None:
        return best.rule.id, [c.describe(request) for c in best_failing]
    for compiled in policy.permits_by_zone_action.get((zone, action), ()):
        failing = compiled.failing(request, when() if compiled.needs_when else None)
        if best is None or len(failing) < len(best_failing):
            best, best_failing = compiled, failing
        if not failing:
            break
    if best is None:
        return None, []
    wanted = ", ".join(sorted(str(r) for r in best.rule.roles))
    suffix = "" if grants else " (through an agreement in force)"
    return best.rule.id, [f"a role among {wanted}{suffix}", *(c.describe(request) for c in best_failing)]


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
