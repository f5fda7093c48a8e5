"""DICOM PS3.15 A.5 audit messages: one ``AuditMessage`` XML document per event.

The element order and attributes follow the A.5.1 schema (``audit-message.rnc``); the
participants follow the A.5.3 message that ``dicom_codes.mapping_for`` names. The
pacsguard event type and sequence number travel in ``EventOutcomeDescription`` so an
auditor can find the event in the Merkle log. Every text value is made XML-safe
(characters XML 1.0 forbids become U+FFFD) so hostile input cannot break the document.
"""

from __future__ import annotations

import base64
import json
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from datetime import UTC, datetime

from pacsguard.audit.dicom_codes import (
    AUDIT_SOURCE_TYPE_APPLICATION_SERVER,
    Code,
    EventId,
    EventMapping,
    IdType,
    ObjectKind,
    Role,
    mapping_for,
    outcome_indicator,
)
from pacsguard.domain import AuditEvent

__all__ = [
    "AUDIT_LOG_URI",
    "NODE_REQUESTED",
    "STUDY_ROOT_FIND",
    "AuditSource",
    "alert_description",
    "alert_subject",
    "dicom_message",
    "to_dicom_xml",
    "xml_safe",
]

STUDY_ROOT_FIND = "1.2.840.10008.5.1.4.1.2.2.1"  # Study Root Query/Retrieve - FIND (PS3.4)
AUDIT_LOG_URI = "urn:pacsguard:audit-log"
# Events pacsguard itself starts although a user is named (A.5.3.12: the logout timer).
NODE_REQUESTED = frozenset({"session.expired"})


@dataclass(frozen=True, slots=True)
class AuditSource:
    """Who reports the events: AuditSourceID, enterprise site and the host pacsguard runs on."""

    source_id: str = "pacsguard"
    site_id: str | None = None
    host: str | None = None


def xml_safe(text: str) -> str:
    """``text`` with every character XML 1.0 forbids (controls, lone surrogates) as U+FFFD."""
    return "".join(ch if _allowed(ord(ch)) else "\ufffd" for ch in text)


def _allowed(cp: int) -> bool:
    return cp in (0x9, 0xA, 0xD) or 0x20 <= cp <= 0xD7FF or 0xE000 <= cp <= 0xFFFD or cp >= 0x10000


def _b64(text: str) -> str:
    return base64.b64encode(text.encode("utf-8", "surrogatepass")).decode("ascii")


def _code(parent: ET.Element, tag: str, code: Code) -> ET.Element:
    return ET.SubElement(
        parent,
        tag,
        {
            "csd-code": xml_safe(code.code),
            "codeSystemName": code.scheme,
            "displayName": xml_safe(code.meaning),
            "originalText": xml_safe(code.meaning),
        },
    )


def _timestamp(moment: datetime) -> str:
    aware = moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
    return aware.astimezone(UTC).isoformat()


def _description(event: AuditEvent) -> str:
    parts = [f"pacsguard event {event.type}"]
    if event.seq is not None:
        parts.append(f"seq {event.seq}")
    if event.decision is not None:
        parts.append(f"effect {event.decision.effect}")
        if event.decision.rule_ids:
            parts.append("rules " + ",".join(event.decision.rule_ids))
        if event.decision.break_glass_reason:
            parts.append(f"break-glass reason {event.decision.break_glass_reason}")
    reason = event.detail.get("reason")
    if isinstance(reason, str):
        parts.append(f"reason {reason}")
    return xml_safe("; ".join(parts))


def _event_identification(root: ET.Element, event: AuditEvent, mapping: EventMapping) -> None:
    ident = ET.SubElement(
        root,
        "EventIdentification",
        {
            "EventActionCode": mapping.action,
            "EventDateTime": _timestamp(event.occurred_at),
            "EventOutcomeIndicator": outcome_indicator(event.outcome),
        },
    )
    _code(ident, "EventID", mapping.event_id)
    for type_code in mapping.type_codes:
        _code(ident, "EventTypeCode", type_code)
    ET.SubElement(ident, "EventOutcomeDescription").text = _description(event)


def _bool(value: bool) -> str:
    return "true" if value else "false"


def _roles(mapping: EventMapping) -> tuple[Code | None, Code]:
    """RoleIDCodes of (the user, pacsguard) as the A.5.3 message asks for them."""
    eid = mapping.event_id
    if eid in (EventId.QUERY, EventId.INSTANCES_TRANSFERRED):
        return Role.SOURCE, Role.DESTINATION
    if eid is EventId.BEGIN_TRANSFERRING:
        return Role.DESTINATION, Role.SOURCE
    if eid is EventId.EXPORT:
        return None, Role.SOURCE
    return None, Role.APPLICATION


def _active_participants(root: ET.Element, event: AuditEvent, mapping: EventMapping, source: AuditSource) -> None:
    actor = event.actor
    user_role, own_role = _roles(mapping)
    has_user = actor.principal_id is not None or actor.ip is not None
    user_requests = has_user and event.type not in NODE_REQUESTED
    if has_user:
        attrs = {"UserID": xml_safe(actor.principal_id or "unknown"), "UserIsRequestor": _bool(user_requests)}
        if actor.ae_title:
            attrs["AlternativeUserID"] = xml_safe(f"AETITLES={actor.ae_title}")
        if actor.ip:
            attrs["NetworkAccessPointID"] = xml_safe(actor.ip)
            attrs["NetworkAccessPointTypeCode"] = "2"
        user = ET.SubElement(root, "ActiveParticipant", attrs)
        if user_role is not None:
            _code(user, "RoleIDCode", user_role)
    own = {"UserID": xml_safe(source.source_id), "UserIsRequestor": _bool(not user_requests)}
    if source.host:
        own["NetworkAccessPointID"] = xml_safe(source.host)
        own["NetworkAccessPointTypeCode"] = "1"
    _code(ET.SubElement(root, "ActiveParticipant", own), "RoleIDCode", own_role)


def _audit_source(root: ET.Element, source: AuditSource) -> None:
    attrs = {"AuditSourceID": xml_safe(source.source_id)}
    if source.site_id:
        attrs["AuditEnterpriseSiteID"] = xml_safe(source.site_id)
    src = ET.SubElement(root, "AuditSourceIdentification", attrs)
    ET.SubElement(src, "AuditSourceTypeCode", {"csd-code": AUDIT_SOURCE_TYPE_APPLICATION_SERVER})


def _participant(
    root: ET.Element,
    object_id: str,
    type_code: str,
    role: str,
    id_type: Code,
    name: str | None = None,
    alert: str | None = None,
) -> ET.Element:
    obj = ET.SubElement(
        root,
        "ParticipantObjectIdentification",
        {
            "ParticipantObjectID": xml_safe(object_id),
            "ParticipantObjectTypeCode": type_code,
            "ParticipantObjectTypeCodeRole": role,
        },
    )
    _code(obj, "ParticipantObjectIDTypeCode", id_type)
    # A.5.1 requires a name or a query; pacsguard holds no names, so the id stands in.
    ET.SubElement(obj, "ParticipantObjectName").text = xml_safe(name or object_id)
    if alert is not None:
        _detail(obj, "Alert Description", alert)  # mandatory for alert subjects (A.5.3.11)
    return obj


def _detail(obj: ET.Element, kind: str, value: str) -> None:
    ET.SubElement(obj, "ParticipantObjectDetail", {"type": kind, "value": _b64(value)})


def _study(root: ET.Element, event: AuditEvent, alert: str | None) -> None:
    o = event.objects
    if o.study_uid is None:
        return
    obj = _participant(root, o.study_uid, "2", "3", IdType.STUDY_INSTANCE_UID, alert=alert)
    for kind, value in (("SeriesInstanceUID", o.series_uid), ("ShareLink", o.share_id)):
        if value is not None:
            _detail(obj, kind, value)
    if o.bytes is not None:
        _detail(obj, "Bytes", str(o.bytes))
    if o.count is None and o.instance_uid is None:
        return
    desc = ET.SubElement(obj, "ParticipantObjectDescription")
    sop = ET.SubElement(desc, "SOPClass", {"NumberOfInstances": str(o.count if o.count is not None else 1)})
    if o.instance_uid is not None:
        ET.SubElement(sop, "Instance", {"UID": xml_safe(o.instance_uid)})


def _query(root: ET.Element, event: AuditEvent) -> None:
    query = event.detail.get("query")
    text = query if isinstance(query, str) else json.dumps(query, sort_keys=True, ensure_ascii=False)
    obj = ET.SubElement(
        root,
        "ParticipantObjectIdentification",
        {
            "ParticipantObjectID": STUDY_ROOT_FIND,
            "ParticipantObjectTypeCode": "2",
            "ParticipantObjectTypeCodeRole": "3",
        },
    )
    _code(obj, "ParticipantObjectIDTypeCode", IdType.SOP_CLASS_UID)
    ET.SubElement(obj, "ParticipantObjectQuery").text = _b64(text)
    protocol = event.detail.get("protocol")
    _detail(obj, "QueryProtocol", protocol if isinstance(protocol, str) else "QIDO-RS")


def _detail_text(event: AuditEvent, *keys: str) -> str | None:
    for key in keys:
        value = event.detail.get(key)
        if isinstance(value, str) and value.strip():
            return value
    return None


def alert_subject(event: AuditEvent, kind: ObjectKind) -> tuple[str, Code, str] | None:
    """(ID, ID type code, name) of a Security Alert subject of ``kind``, if the event names one."""
    o, a = event.objects, event.actor
    if kind is ObjectKind.USER:
        who = o.target_principal or a.principal_id
        return (f"urn:pacsguard:principal:{who}", IdType.URI, who) if who else None
    if kind is ObjectKind.NODE:
        node = _detail_text(event, "ip", "device_id") or a.ip or a.device_id
        return (node, IdType.NODE_ID, node) if node else None
    if kind is ObjectKind.RESOURCE:
        resource = _detail_text(event, "resource") or o.zone or f"urn:pacsguard:{event.type}"
        return resource, IdType.URI, resource
    return None


def alert_description(event: AuditEvent) -> str:
    """The free-text "Alert Description" of a Security Alert (A.5.3.11)."""
    reason = _detail_text(event, "reason", "description")
    return f"{event.type} ({event.outcome.value})" + (f": {reason}" if reason else "")


def _objects(root: ET.Element, event: AuditEvent, mapping: EventMapping) -> None:
    o = event.objects
    alert = alert_description(event) if mapping.event_id is EventId.SECURITY_ALERT else None
    for kind in mapping.objects:
        if kind is ObjectKind.PATIENT and o.patient_id is not None:
            _participant(root, o.patient_id, "1", "1", IdType.PATIENT_NUMBER)
        elif kind is ObjectKind.STUDY:
            _study(root, event, alert)
        elif kind is ObjectKind.QUERY:
            _query(root, event)
        elif kind is ObjectKind.AUDIT_LOG:
            _participant(root, AUDIT_LOG_URI, "2", "13", IdType.URI, "pacsguard audit log")
        elif (subject := alert_subject(event, kind)) is not None:
            object_id, id_type, name = subject
            _participant(root, object_id, "2", "13", id_type, name, alert or alert_description(event))


def dicom_message(event: AuditEvent, source: AuditSource | None = None) -> ET.Element:
    """The PS3.15 A.5 ``AuditMessage`` element for ``event``. Never raises on odd values."""
    source = source or AuditSource()
    mapping = mapping_for(event.type)
    root = ET.Element("AuditMessage")
    _event_identification(root, event, mapping)
    _active_participants(root, event, mapping, source)
    _audit_source(root, source)
    _objects(root, event, mapping)
    return root


def to_dicom_xml(event: AuditEvent, source: AuditSource | None = None) -> bytes:
    """``event`` as one UTF-8 XML document on a single line (no declaration, no newlines)."""
    raw: bytes = ET.tostring(dicom_message(event, source), encoding="utf-8", xml_declaration=False)
    # Without indentation, line breaks occur only in text content, where a character
    # reference means the same; one line per message suits syslog and line-based files.
    return raw.replace(b"\n", b"&#10;").replace(b"\r", b"&#13;")
