"""What the decision point needs of a policy agreement.

``pacsguard.agreements.Agreement`` satisfies this protocol; the import contracts keep the
``policy`` and ``agreements`` packages independent, so policy names only this shape.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Protocol

from pacsguard.domain import Action, Purpose, RoleRef, Sensitivity

__all__ = ["AgreementTerms"]


class AgreementTerms(Protocol):
    """An agreement between two parties (zone ids) with a scope and a role mapping."""

    @property
    def id(self) -> str: ...

    @property
    def parties(self) -> tuple[str, str]: ...

    @property
    def role_mapping(self) -> Mapping[RoleRef, tuple[RoleRef, ...]]: ...

    def in_force(self, now: datetime) -> bool: ...

    def scope_lacks(self, action: Action, sensitivity: Sensitivity, purpose: Purpose) -> str | None: ...
