"""Plain typed values shared by every layer. Imports nothing but the standard library,
``pacsguard.clock`` and ``pacsguard.errors``."""

from pacsguard.domain.access import (
    Action,
    AuthStrength,
    HeldRole,
    Purpose,
    RoleSource,
    Sensitivity,
    Subject,
)
from pacsguard.domain.events import (
    Actor,
    AuditEvent,
    DecisionRef,
    EventBus,
    EventSink,
    ObjectRef,
    Outcome,
    RecordingSink,
)
from pacsguard.domain.validity import Validity
from pacsguard.domain.zones import Role, RoleRef, Zone, ZoneTree

__all__ = [
    "Action",
    "Actor",
    "AuditEvent",
    "AuthStrength",
    "DecisionRef",
    "EventBus",
    "EventSink",
    "HeldRole",
    "ObjectRef",
    "Outcome",
    "Purpose",
    "RecordingSink",
    "Role",
    "RoleRef",
    "RoleSource",
    "Sensitivity",
    "Subject",
    "Validity",
    "Zone",
    "ZoneTree",
]
