"""Patient consent directives as forbids: which directives stop a given request.

A directive forbids a request; only break-glass passes it, and only when the directive
allows emergency access (``allow_emergency``). Storage of directives is the caller's; this
module looks at values only.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from pacsguard.domain import ConsentDirective, ConsentKind, ZoneTree
from pacsguard.domain.decision import AccessRequest

__all__ = ["consent_forbids"]


def consent_forbids(
    directives: Iterable[ConsentDirective], request: AccessRequest, now: datetime, zones: ZoneTree
) -> list[ConsentDirective]:
    """The directives in force at ``now`` for the request's patient that forbid the request."""
    patient = request.resource.patient_id
    if patient is None:
        return []
    return [
        d for d in directives if d.patient_id == patient and d.validity.contains(now) and _forbids(d, request, zones)
    ]


def _forbids(directive: ConsentDirective, request: AccessRequest, zones: ZoneTree) -> bool:
    home = request.subject.zone
    if directive.kind is ConsentKind.DENY_PURPOSES:
        return request.context.purpose in directive.purposes
    inside = home in zones and any(z in zones and zones.is_within(home, z) for z in directive.zones)
    if directive.kind is ConsentKind.ONLY_ZONES:
        return not inside
    return inside
