"""From DICOM PS3.15 A.5 codes and participants to pacsguard events: the documented table.

``MAPPING_TABLE`` is read top to bottom; the first row whose EventID, EventActionCode
(``*``: any) and EventTypeCode (``*``: any) match the message gives the event type, one
for a successful outcome (EventOutcomeIndicator 0) and one for any failure (4, 8, 12).

=========  ======  ===============  ===================  ====================
EventID    Action  EventTypeCode    outcome 0            outcome 4/8/12
=========  ======  ===============  ===================  ====================
110114     \\*      110122 Login     login.success        login.failure
110114     \\*      110123 Logout    session.revoked      session.revoked
110103     R       \\*               study.read           study.read
110103     C, U    \\*               study.store          study.store
110103     D       \\*               study.delete         study.delete
110104     R       \\*               study.read           study.read
110104     C, U    \\*               study.store          study.store
110102     \\*      \\*               study.read           study.read
110105     \\*      \\*               study.delete         study.delete
110106     \\*      \\*               study.export         study.export
110107     \\*      \\*               study.store          study.store
110112     \\*      \\*               study.query          study.query
110101     \\*      \\*               audit.log.used       audit.log.used
110113     \\*      110127 Emerg.    break_glass.granted  break_glass.refused
110113     \\*      110132 Restr.    external.other       access.denied
=========  ======  ===============  ===================  ====================

Everything else (Application Activity 110100, Network Entry 110108, Order Record 110109,
Patient Record 110110, Procedure Record 110111, the other Security Alerts, private
codes) becomes ``external.other``: never dropped. Every event keeps the message's codes
in ``detail["external"]`` (see ``external_detail``), so a rule or an auditor can still
tell them apart.

pacsguard's own messages name their event type (``EventOutcomeDescription`` "pacsguard
event X", or a ``99PACSGUARD`` type code, or the FHIR ``urn:pacsguard:event-type``
subtype). That type is used when it is a documented one *and* pacsguard would export it
with the same EventID and action, so a pacsguard export round-trips exactly; a sender
cannot claim a type whose DICOM form differs from its message.

The actor is the requesting participant that is not the reporting system itself
(UserID = AuditSourceID), else the first other participant, else the first one. Its
NetworkAccessPointID is the IP (type 2) or the device (type 1); ``AETITLES=`` in the
AlternativeUserID gives the AE title. Objects: the patient (type 1, role 1, or ID type
2), the first study (ID type 110180) with its series, instance, count and bytes details,
a ``urn:pacsguard:principal:`` subject (the target principal) and the query.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass

from pacsguard.audit.dicom_codes import EVENT_MAPPINGS, PRIVATE_SCHEME, Code, EventId, IdType, Type
from pacsguard.domain import Actor, AuditEvent, ObjectRef, Outcome
from pacsguard.domain.events import JsonValue
from pacsguard.ingest.message import Message, Participant, ParticipantObject

__all__ = ["MAPPING_TABLE", "OWN_TYPE_PREFIX", "Row", "classify", "external_detail", "outcome_of", "to_event"]

OWN_TYPE_PREFIX = "pacsguard event "
PRINCIPAL_URN = "urn:pacsguard:principal:"
_MAX_LISTED = 16  # participants and objects kept in detail["external"]


@dataclass(frozen=True, slots=True)
class Row:
    """One row of the table: EventID, actions (empty: any), type code (None: any), types."""

    event_id: Code
    actions: str
    type_code: Code | None
    success: str
    failure: str

    def matches(self, message: Message) -> bool:
        if message.event_id.code != self.event_id.code:
            return False
        if self.actions and (message.action or "") not in self.actions:
            return False
        return self.type_code is None or any(c.code == self.type_code.code for c in message.type_codes)


_E = EventId
MAPPING_TABLE: tuple[Row, ...] = (
    Row(_E.USER_AUTHENTICATION, "", Type.LOGIN, "login.success", "login.failure"),
    Row(_E.USER_AUTHENTICATION, "", Type.LOGOUT, "session.revoked", "session.revoked"),
    Row(_E.INSTANCES_ACCESSED, "R", None, "study.read", "study.read"),
    Row(_E.INSTANCES_ACCESSED, "CU", None, "study.store", "study.store"),
    Row(_E.INSTANCES_ACCESSED, "D", None, "study.delete", "study.delete"),
    Row(_E.INSTANCES_TRANSFERRED, "R", None, "study.read", "study.read"),
    Row(_E.INSTANCES_TRANSFERRED, "CU", None, "study.store", "study.store"),
    Row(_E.BEGIN_TRANSFERRING, "", None, "study.read", "study.read"),
    Row(_E.STUDY_DELETED, "", None, "study.delete", "study.delete"),
    Row(_E.EXPORT, "", None, "study.export", "study.export"),
    Row(Code("110107", "DCM", "Import"), "", None, "study.store", "study.store"),
    Row(_E.QUERY, "", None, "study.query", "study.query"),
    Row(_E.AUDIT_LOG_USED, "", None, "audit.log.used", "audit.log.used"),
    Row(_E.SECURITY_ALERT, "", Type.EMERGENCY_OVERRIDE_STARTED, "break_glass.granted", "break_glass.refused"),
    Row(_E.SECURITY_ALERT, "", Type.USE_OF_RESTRICTED_FUNCTION, "external.other", "access.denied"),
)

_OUTCOMES = {"0": Outcome.SUCCESS, "4": Outcome.FAILURE, "8": Outcome.ERROR, "12": Outcome.ERROR}


def outcome_of(indicator: str) -> Outcome:
    """PS3.15 EventOutcomeIndicator as an ``Outcome``: 0 success, 4 failure, 8 and 12 error
    (anything else: error)."""
    return _OUTCOMES.get(indicator.strip(), Outcome.ERROR)


def _own_type(message: Message) -> str | None:
    """The pacsguard event type the message names, if it is consistent with its codes."""
    named: list[str] = [c.code for c in message.type_codes if c.scheme == PRIVATE_SCHEME]
    if message.description and message.description.startswith(OWN_TYPE_PREFIX):
        named.append(message.description[len(OWN_TYPE_PREFIX) :].split(";", 1)[0].strip())
    for name in named:
        mapping = EVENT_MAPPINGS.get(name)
        if mapping is None or mapping.event_id.code != message.event_id.code:
            continue
        if message.action is None or mapping.action == message.action:
            return name
    return None


def classify(message: Message, *, trust_own_type: bool = True) -> str:
    """The pacsguard event type of ``message``: its own documented type (see the module
    docstring), else the first matching table row, else ``external.other``."""
    if trust_own_type and (own := _own_type(message)) is not None:
        return own
    success = outcome_of(message.outcome) is Outcome.SUCCESS
    for row in MAPPING_TABLE:
        if row.matches(message):
            return row.success if success else row.failure
    return "external.other"


def _actor_participant(message: Message) -> Participant | None:
    people = message.participants
    if not people:
        return None
    reporter = message.audit_source_id
    others = [p for p in people if p.user_id != reporter]
    for p in others:
        if p.requestor:
            return p
    return others[0] if others else people[0]


def _ae_title(alternative_id: str | None) -> str | None:
    if not alternative_id or not alternative_id.startswith("AETITLES="):
        return None
    first = alternative_id[len("AETITLES=") :].split(";", 1)[0].strip()
    return first or None


def _actor(message: Message) -> Actor:
    p = _actor_participant(message)
    if p is None:
        return Actor()
    kind = (p.network_type or "").strip()
    return Actor(
        principal_id=p.user_id or None,
        ip=p.network_id if kind == "2" else None,
        device_id=p.network_id if kind in ("1", "5") else None,
        ae_title=_ae_title(p.alternative_id),
    )


def _is_patient(obj: ParticipantObject) -> bool:
    return (obj.type_code == "1" and obj.role == "1") or (obj.id_type is not None and obj.id_type.code == "2")


def _is_study(obj: ParticipantObject) -> bool:
    return obj.id_type is not None and obj.id_type.code == IdType.STUDY_INSTANCE_UID.code


def _int(text: str | None) -> int | None:
    try:
        return int(text) if text is not None else None
    except ValueError:
        return None


def _objects(message: Message, actor: Actor) -> ObjectRef:
    patient = next((o.object_id for o in message.objects if _is_patient(o)), None)
    study = next((o for o in message.objects if _is_study(o)), None)
    target = None
    for o in message.objects:
        if o.object_id.startswith(PRINCIPAL_URN):
            who = o.object_id[len(PRINCIPAL_URN) :]
            if who and who != actor.principal_id:
                target = who
                break
    if study is None:
        return ObjectRef(patient_id=patient, target_principal=target)
    details = dict(study.details)
    return ObjectRef(
        patient_id=patient,
        study_uid=study.object_id,
        series_uid=details.get("SeriesInstanceUID"),
        instance_uid=study.instance_uids[0] if study.instance_uids else details.get("SOPInstanceUID"),
        count=study.instances if study.instances is not None else _int(details.get("NumberOfInstances")),
        bytes=_int(details.get("Bytes")),
        share_id=details.get("ShareLink"),
        target_principal=target,
    )


def _code_json(code: Code) -> list[JsonValue]:
    return [code.code, code.scheme, code.meaning]


def _listed(items: Iterable[dict[str, JsonValue]]) -> list[JsonValue]:
    listed: list[JsonValue] = []
    for item in items:
        if len(listed) >= _MAX_LISTED:
            break
        listed.append(item)
    return listed


def external_detail(message: Message) -> dict[str, JsonValue]:
    """The message's own codes, participants and objects: ``detail["external"]``."""
    participants = _listed(
        {"user_id": p.user_id, "requestor": p.requestor, "roles": [_code_json(r) for r in p.roles]}
        for p in message.participants
    )
    objects = _listed(
        {
            "id": o.object_id,
            "type": o.type_code,
            "role": o.role,
            "id_type": _code_json(o.id_type) if o.id_type else None,
        }
        for o in message.objects
    )
    return {
        "format": message.format,
        "event_id": _code_json(message.event_id),
        "action": message.action,
        "type_codes": [_code_json(c) for c in message.type_codes],
        "outcome": message.outcome,
        "description": message.description,
        "audit_source_id": message.audit_source_id,
        "audit_site_id": message.audit_site_id,
        "message_id": message.message_id,
        "participants": participants,
        "objects": objects,
        "notes": list(message.notes),
    }


def _query(message: Message) -> JsonValue:
    text = next((o.query for o in message.objects if o.query is not None), None)
    if text is None:
        return None
    try:
        parsed = json.loads(text)
    except ValueError:
        return text
    return parsed if isinstance(parsed, dict) else text


def to_event(message: Message, *, trust_own_type: bool = True) -> AuditEvent:
    """The ``AuditEvent`` for ``message`` (type by ``classify``, time from the message).

    Pure and total: any message gives an event (``external.other`` at worst).
    """
    actor = _actor(message)
    detail: dict[str, JsonValue] = {"external": external_detail(message)}
    query = _query(message)
    if query is not None:
        detail["query"] = query
    return AuditEvent(
        type=classify(message, trust_own_type=trust_own_type),
        occurred_at=message.occurred_at,
        outcome=outcome_of(message.outcome),
        actor=actor,
        objects=_objects(message, actor),
        detail=detail,
    )
