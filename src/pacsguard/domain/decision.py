"""The values of an access decision (ISO/TS 22600-1 access control): request in, decision out.

An ``AccessRequest`` names who asks (``Subject``), for what (``Action``), on which
``Resource``, in which ``RequestContext``; the decision point answers with a ``Decision``
that carries its effect, its reasons and the obligations the caller must fulfil.
``ConsentDirective`` and ``BreakGlassGrant`` are the patient-level restrictions and the
emergency override that travel with a request.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from pacsguard.domain.access import Action, Purpose, Sensitivity, Subject
from pacsguard.domain.events import DecisionRef
from pacsguard.domain.validity import Validity
from pacsguard.domain.zones import RoleRef

__all__ = [
    "AccessRequest",
    "BreakGlassGrant",
    "ConsentDirective",
    "ConsentKind",
    "ConsentState",
    "Decision",
    "Effect",
    "Obligation",
    "Reason",
    "RequestContext",
    "Resource",
]


class Effect(StrEnum):
    """The outcome of a decision; a rule's effect is ``permit`` or ``forbid``."""

    PERMIT = "permit"
    DENY = "deny"


class ConsentState(StrEnum):
    """What the archive knows of the patient's general consent to the use of the study."""

    GIVEN = "given"
    UNKNOWN = "unknown"
    REFUSED = "refused"


class ConsentKind(StrEnum):
    """The kinds of patient directive. ``only_zones``: no access from outside these zones
    ("no access outside my treating zone"); ``deny_zones``: not to these zones or
    organisations; ``deny_purposes``: not for these purposes ("no research use")."""

    ONLY_ZONES = "only_zones"
    DENY_ZONES = "deny_zones"
    DENY_PURPOSES = "deny_purposes"


@dataclass(frozen=True, slots=True)
class Resource:
    """The study asked for, with the attributes the study catalogue keeps on it."""

    zone: str
    study_uid: str | None = None
    patient_id: str | None = None
    sensitivity: Sensitivity = Sensitivity.INTERNAL
    modality: str | None = None
    consent: ConsentState = ConsentState.UNKNOWN


@dataclass(frozen=True, slots=True)
class BreakGlassGrant:
    """A time-boxed emergency access to one patient or one study (ISO/TS 22600-1 §3.2.8)."""

    id: str
    principal_id: str
    reason: str
    validity: Validity
    role: RoleRef
    patient_id: str | None = None
    study_uid: str | None = None

    def covers(self, principal_id: str, resource: Resource, now: datetime) -> bool:
        """True when the grant is in force for this principal and resource at ``now``."""
        if principal_id != self.principal_id or not self.validity.contains(now):
            return False
        if self.study_uid is not None:
            return resource.study_uid == self.study_uid
        return self.patient_id is not None and resource.patient_id == self.patient_id


@dataclass(frozen=True, slots=True)
class RequestContext:
    """Where and why: purpose of use, the client's IP address, an emergency grant."""

    purpose: Purpose = Purpose.TREATMENT
    ip: str | None = None
    break_glass: BreakGlassGrant | None = None


@dataclass(frozen=True, slots=True)
class ConsentDirective:
    """A patient's restriction on the use of their studies; one row of a consent table.

    ``zones`` are zone ids (a zone stands for its sub-tree), ``purposes`` the purposes a
    ``deny_purposes`` directive forbids. ``allow_emergency`` lets break-glass pass it.
    """

    id: str
    patient_id: str
    kind: ConsentKind
    validity: Validity = field(default_factory=Validity)
    zones: frozenset[str] = frozenset()
    purposes: frozenset[Purpose] = frozenset()
    allow_emergency: bool = True
    description: str = ""


@dataclass(frozen=True, slots=True, order=True)
class Obligation:
    """Something the caller must do when it acts on the decision, e.g. ``audit: detailed``."""

    kind: str
    value: str

    def __str__(self) -> str:
        return f"{self.kind}: {self.value}"


@dataclass(frozen=True, slots=True)
class Reason:
    """One step of a decision's explanation; ``code`` is stable, ``message`` is for people."""

    code: str
    message: str
    rule_id: str | None = None


@dataclass(frozen=True, slots=True)
class Decision:
    """The answer: effect, why, and what must happen as a consequence.

    ``rule_ids`` are the rules that decided (the permits that matched, or the forbids);
    ``closest`` and ``lacking`` name, for a deny, the permit rule that came nearest and
    what it lacked.
    """

    effect: Effect
    reasons: tuple[Reason, ...] = ()
    obligations: tuple[Obligation, ...] = ()
    rule_ids: tuple[str, ...] = ()
    agreement: str | None = None
    delegation: tuple[str, ...] = ()
    consent: tuple[str, ...] = ()
    break_glass: str | None = None
    closest: str | None = None
    lacking: tuple[str, ...] = ()

    @property
    def permitted(self) -> bool:
        return self.effect is Effect.PERMIT

    def ref(self, break_glass_reason: str | None = None) -> DecisionRef:
        """The summary that goes into an ``AuditEvent``."""
        return DecisionRef(
            effect=self.effect.value,
            rule_ids=self.rule_ids,
            agreement=self.agreement,
            delegation=self.delegation,
            break_glass_reason=break_glass_reason,
        )


@dataclass(frozen=True, slots=True)
class AccessRequest:
    """Who asks to do what on which study, in what context, under which patient directives."""

    subject: Subject
    action: Action
    resource: Resource
    context: RequestContext = field(default_factory=RequestContext)
    consents: tuple[ConsentDirective, ...] = ()
