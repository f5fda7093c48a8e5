"""The neutral form of one external audit message, before it becomes an ``AuditEvent``.

Both parsers (DICOM PS3.15 A.5 XML in ``dicom_xml``, FHIR R4 AuditEvent JSON in
``fhir_json``) produce a ``Message``: the EventID, action, type codes and outcome, the
active participants and the participant objects, each as the message stated them. The
mapping (``mapping.to_event``) then decides the pacsguard event type, the actor and the
objects from it, in one place for both formats.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from pacsguard.audit.dicom_codes import Code

__all__ = ["Message", "Participant", "ParticipantObject"]


@dataclass(frozen=True, slots=True)
class Participant:
    """An ActiveParticipant (DICOM) or an agent (FHIR)."""

    user_id: str
    requestor: bool = False
    alternative_id: str | None = None  # DICOM AlternativeUserID, FHIR altId
    name: str | None = None
    network_id: str | None = None  # NetworkAccessPointID / network.address
    network_type: str | None = None  # 1 machine name, 2 IP address, 5 URI
    roles: tuple[Code, ...] = ()


@dataclass(frozen=True, slots=True)
class ParticipantObject:
    """A ParticipantObjectIdentification (DICOM) or an entity (FHIR)."""

    object_id: str
    type_code: str | None = None  # 1 person, 2 system object, 3 organization, 4 other
    role: str | None = None  # 1 patient, 3 report, 13 security resource, 24 query, ...
    id_type: Code | None = None  # e.g. 2 patient number, 110180 Study Instance UID
    name: str | None = None
    details: tuple[tuple[str, str], ...] = ()  # (type, decoded value)
    instances: int | None = None  # NumberOfInstances of the described SOP classes
    instance_uids: tuple[str, ...] = ()
    query: str | None = None  # decoded ParticipantObjectQuery


@dataclass(frozen=True, slots=True)
class Message:
    """One audit message as its sender stated it; ``format`` is ``dicom`` or ``fhir``."""

    format: str
    event_id: Code
    occurred_at: datetime
    action: str | None = None  # C, R, U, D, E
    type_codes: tuple[Code, ...] = ()
    outcome: str = "0"  # PS3.15 EventOutcomeIndicator: 0, 4, 8, 12
    description: str | None = None
    audit_source_id: str | None = None
    audit_site_id: str | None = None
    participants: tuple[Participant, ...] = ()
    objects: tuple[ParticipantObject, ...] = ()
    message_id: str | None = None  # the message's own identity (FHIR id), when it has one
    notes: tuple[str, ...] = field(default=())  # what the parser had to assume (e.g. no time zone)
