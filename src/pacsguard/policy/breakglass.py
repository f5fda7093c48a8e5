"""Break-glass (ISO/TS 22600-1 §3.2.8): a professional goes beyond their authorisation in an
emergency and justifies it later.

``request_break_glass`` grants time-boxed emergency access to one study or one patient when
a role of the subject allows the ``break_glass`` action on it and a reason of a few words
is given. The grant then travels in ``RequestContext.break_glass``; decisions made under it
carry the obligations alert + review, and it never passes an ``absolute`` forbid. The
caller records the grant in the audit log (the decision point itself emits nothing).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from pacsguard.domain import (
    AccessRequest,
    Action,
    BreakGlassGrant,
    Decision,
    Purpose,
    RequestContext,
    Resource,
    Subject,
    Validity,
)
from pacsguard.policy.decide import DecisionPoint

__all__ = ["DEFAULT_DURATION", "MAX_DURATION", "MIN_REASON_WORDS", "BreakGlassRefusal", "request_break_glass"]

DEFAULT_DURATION = timedelta(hours=1)
MAX_DURATION = timedelta(hours=12)
MIN_REASON_WORDS = 3


@dataclass(frozen=True, slots=True)
class BreakGlassRefusal:
    """Why break-glass was refused; ``code`` is stable and goes into the audit log."""

    code: str
    message: str
    decision: Decision | None = None


def request_break_glass(
    point: DecisionPoint,
    subject: Subject,
    resource: Resource,
    reason: str,
    now: datetime,
    *,
    duration: timedelta = DEFAULT_DURATION,
    scope: Literal["study", "patient"] = "study",
    ip: str | None = None,
) -> BreakGlassGrant | BreakGlassRefusal:
    """Grant emergency access to ``resource``'s study (or its patient), or say why not."""
    words = reason.split()
    if len(words) < MIN_REASON_WORDS:
        return BreakGlassRefusal(
            "reason-required", f"give a reason of at least {MIN_REASON_WORDS} words for emergency access"
        )
    if not timedelta(0) < duration <= MAX_DURATION:
        return BreakGlassRefusal("bad-duration", f"the duration must be more than 0 and at most {MAX_DURATION}")
    target = resource.study_uid if scope == "study" else resource.patient_id
    if target is None:
        return BreakGlassRefusal("no-target", f"the request names no {scope} to open")
    asked = AccessRequest(subject, Action.BREAK_GLASS, resource, RequestContext(Purpose.EMERGENCY, ip))
    decision = point.decide(asked, now)
    if not decision.permitted:
        return BreakGlassRefusal("not-allowed", "no role of the subject allows break-glass here", decision)
    held = next(h for h in subject.roles if h.validity.contains(now))
    digest = hashlib.sha256(f"{subject.principal_id}|{scope}|{target}|{now.isoformat()}".encode()).hexdigest()
    return BreakGlassGrant(
        id=f"bg-{digest[:16]}",
        principal_id=subject.principal_id,
        reason=" ".join(words),
        validity=Validity(now, now + duration),
        role=held.role,
        patient_id=resource.patient_id if scope == "patient" else None,
        study_uid=resource.study_uid if scope == "study" else None,
    )
