"""The policy agreement between two zones (ISO/TS 22600-1 Annex B), as a frozen value.

An agreement lets subjects of one party reach studies of the other within its scope
(actions, maximum sensitivity, purposes), under a role mapping from one party's roles to
the other's, while it is ``active`` and inside its validity period.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from pacsguard.domain import Action, Purpose, RoleRef, Sensitivity, Validity

__all__ = ["Agreement", "AgreementState"]


class AgreementState(StrEnum):
    """Life cycle of an agreement; only ``active`` grants anything."""

    DRAFT = "draft"
    ACTIVE = "active"
    SUSPENDED = "suspended"
    TERMINATED = "terminated"


@dataclass(frozen=True)
class Agreement:
    """A policy agreement between two parties (zone ids; a zone stands for its sub-tree)."""

    id: str
    parties: tuple[str, str]
    state: AgreementState
    validity: Validity
    actions: frozenset[Action]
    max_sensitivity: Sensitivity
    purposes: frozenset[Purpose]
    role_mapping: Mapping[RoleRef, tuple[RoleRef, ...]] = field(default_factory=dict)
    title: str = ""

    def in_force(self, now: datetime) -> bool:
        """True when the agreement is active and ``now`` lies in its validity period."""
        return self.state is AgreementState.ACTIVE and self.validity.contains(now)

    def scope_lacks(self, action: Action, sensitivity: Sensitivity, purpose: Purpose) -> str | None:
        """What the agreement's scope does not cover, or ``None`` when it covers the request."""
        if action not in self.actions:
            return f"action {action.value} is outside the agreement's scope"
        if sensitivity > self.max_sensitivity:
            return f"sensitivity {int(sensitivity)} exceeds the agreement's maximum {int(self.max_sensitivity)}"
        if purpose not in self.purposes:
            return f"purpose {purpose.value} is not agreed"
        return None
