"""The vocabulary of an access decision: actions, sensitivity, subjects, resources.

The decision point (``pacsguard.policy``) turns an ``AccessRequest`` into a ``Decision``.
These are the values that cross the seam between the directory, the gateway and policy.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum, StrEnum

from pacsguard.domain.validity import Validity
from pacsguard.domain.zones import RoleRef

__all__ = [
    "Action",
    "AuthStrength",
    "HeldRole",
    "Purpose",
    "RoleSource",
    "Sensitivity",
    "Subject",
]


class Action(StrEnum):
    """What a subject asks to do. ``admin.*`` actions guard directory and policy changes."""

    QUERY = "query"
    READ = "read"
    STORE = "store"
    EXPORT = "export"
    SHARE = "share"
    DELETE = "delete"
    CLASSIFY = "classify"
    BREAK_GLASS = "break_glass"
    ADMIN_USERS = "admin.users"
    ADMIN_ROLES = "admin.roles"
    ADMIN_POLICY = "admin.policy"
    ADMIN_AUDIT = "admin.audit"
    ADMIN_CONTAINMENT = "admin.containment"


class Sensitivity(IntEnum):
    """Protection category 0..5 (ISO/TS 22600-1 classification)."""

    UNASSIGNED = 0
    UNCLASSIFIED = 1
    INTERNAL = 2
    CONFIDENTIAL = 3
    SECRET = 4
    TOP_SECRET = 5


class Purpose(StrEnum):
    """Purpose of use, as asked for in the request context."""

    TREATMENT = "treatment"
    RESEARCH = "research"
    AUDIT = "audit"
    EMERGENCY = "emergency"


class AuthStrength(IntEnum):
    """How strongly the subject was authenticated."""

    NONE = 0
    PASSWORD = 1
    TWO_FACTOR = 2
    CERTIFICATE = 3


class RoleSource(StrEnum):
    ASSIGNMENT = "assignment"
    DELEGATION = "delegation"


@dataclass(frozen=True, slots=True)
class HeldRole:
    """A role a subject holds right now, and where it came from.

    ``actions`` is ``None`` for the whole role, or the subset a delegation passed on.
    ``chain`` lists the assignment id then each delegation id, oldest first, so that a
    decision can name who passed the role to whom.
    """

    role: RoleRef
    source: RoleSource
    source_id: str
    validity: Validity = field(default_factory=Validity)
    actions: frozenset[Action] | None = None
    chain: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Subject:
    """An authenticated principal with the roles the directory says it holds."""

    principal_id: str
    zone: str
    roles: tuple[HeldRole, ...] = ()
    auth_strength: AuthStrength = AuthStrength.NONE
    kind: str = "person"

    def holds(self, role: str) -> bool:
        """True when the subject holds the whole of the role named ``role`` (in any zone);
        a delegated subset of its actions does not count."""
        return any(held.role.name == role and held.actions is None for held in self.roles)
