"""Small builders for requests in tests."""

from __future__ import annotations

from datetime import datetime

from pacsguard.domain import (
    AccessRequest,
    Action,
    AuthStrength,
    ConsentDirective,
    HeldRole,
    Purpose,
    RequestContext,
    Resource,
    RoleRef,
    Sensitivity,
    Subject,
    Validity,
    ZoneTree,
)
from pacsguard.domain.access import RoleSource
from pacsguard.domain.decision import BreakGlassGrant
from pacsguard.domain.zones import Role, Zone


def build_zones() -> ZoneTree:
    """The template's zones: north (with sub-zone north-cardiology) and south."""

    def r(text: str) -> RoleRef:
        return RoleRef.parse(text)

    return ZoneTree.build(
        [
            Zone(
                "north",
                "North",
                roles=(
                    Role(r("north/security-officer")),
                    Role(r("north/radiologist"), includes=(r("north/referrer"),)),
                    Role(r("north/referrer")),
                ),
            ),
            Zone("north-cardiology", "Cardiology", "north", roles=(Role(r("north-cardiology/cardiologist")),)),
            Zone("south", "South", roles=(Role(r("south/radiologist")), Role(r("south/security-officer")))),
        ]
    )


def held(text: str, *, validity: Validity | None = None, actions: set[Action] | None = None) -> HeldRole:
    delegated = actions is not None
    return HeldRole(
        RoleRef.parse(text),
        RoleSource.DELEGATION if delegated else RoleSource.ASSIGNMENT,
        "d-1" if delegated else "a-1",
        validity or Validity(),
        frozenset(actions) if actions is not None else None,
        ("a-1", "d-1") if delegated else ("a-1",),
    )


def request(
    *roles: str | HeldRole,
    zone: str = "north",
    study_zone: str = "north",
    action: Action = Action.READ,
    sensitivity: Sensitivity = Sensitivity.INTERNAL,
    modality: str | None = "CT",
    purpose: Purpose = Purpose.TREATMENT,
    auth: AuthStrength = AuthStrength.PASSWORD,
    ip: str | None = None,
    consents: tuple[ConsentDirective, ...] = (),
    grant: BreakGlassGrant | None = None,
    principal: str = "alice",
) -> AccessRequest:
    held_roles = tuple(h if isinstance(h, HeldRole) else held(h) for h in roles)
    return AccessRequest(
        Subject(principal, zone, held_roles, auth),
        action,
        Resource(study_zone, "1.2.3", "p-1", sensitivity, modality),
        RequestContext(purpose, ip, grant),
        consents,
    )


def at(text: str) -> datetime:
    return datetime.fromisoformat(text)
