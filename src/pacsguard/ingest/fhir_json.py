"""FHIR R4 AuditEvent resources (JSON) into ``Message``: plain ``json`` and checks, no I/O.

Accepted: one AuditEvent resource, or a Bundle whose entries hold them
(``fhir_resources``). The codes map as IHE Basic Audit Log Patterns put them: ``type`` is
the DICOM EventID, ``subtype`` the EventTypeCodes (pacsguard's own event type under
``urn:pacsguard:event-type``), ``agent`` the active participants, ``entity`` the
participant objects, ``source.observer`` the audit source. No FHIR library is needed.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Iterator, Mapping
from typing import Any

from pacsguard.audit.dicom_codes import PRIVATE_SCHEME, Code
from pacsguard.errors import MessageRejected
from pacsguard.ingest.dicom_xml import parse_time
from pacsguard.ingest.message import Message, Participant, ParticipantObject

__all__ = ["fhir_resources", "parse_fhir", "parse_fhir_json"]

_SCHEMES = {
    "http://dicom.nema.org/resources/ontology/DCM": "DCM",
    "urn:pacsguard:event-type": PRIVATE_SCHEME,
    "http://terminology.hl7.org/CodeSystem/audit-entity-type": "RFC-3881",
}


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _dict(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _coding(value: Any) -> Code | None:
    coding = _dict(value)
    nested = _list(coding.get("coding"))
    if nested:  # a CodeableConcept: its first coding
        return _coding(nested[0])
    code = _text(coding.get("code"))
    if code is None:
        return None
    system = _text(coding.get("system")) or ""
    return Code(code, _SCHEMES.get(system, system), _text(coding.get("display")) or "")


def _identifier(reference: Any) -> str:
    who = _dict(reference)
    ident = _dict(who.get("identifier"))
    return _text(ident.get("value")) or _text(who.get("reference")) or _text(who.get("display")) or ""


def _agent(agent: Mapping[str, Any]) -> Participant:
    network = _dict(agent.get("network"))
    roles = [_coding(r) for r in _list(agent.get("role"))]
    kind = _coding(agent.get("type"))
    return Participant(
        user_id=_identifier(agent.get("who")),
        requestor=agent.get("requestor") is True,
        alternative_id=f"AETITLES={alt}" if (alt := _text(agent.get("altId"))) else None,
        name=_text(agent.get("name")),
        network_id=_text(network.get("address")),
        network_type=_text(network.get("type")),
        roles=tuple(r for r in (*roles, kind) if r is not None),
    )


def _b64(text: str) -> str:
    try:
        return base64.b64decode(text, validate=True).decode("utf-8", "replace")
    except (binascii.Error, ValueError):
        return text


def _entity(entity: Mapping[str, Any]) -> ParticipantObject:
    details: list[tuple[str, str]] = []
    for raw_detail in _list(entity.get("detail")):
        d = _dict(raw_detail)
        kind = _text(d.get("type"))
        value = _text(d.get("valueString"))
        if value is None and (raw := _text(d.get("valueBase64Binary"))) is not None:
            value = _b64(raw)
        if kind is not None and value is not None:
            details.append((kind, value))
    what = _dict(entity.get("what"))
    ident = _dict(what.get("identifier"))
    system = _text(ident.get("system"))
    type_code, role = _coding(entity.get("type")), _coding(entity.get("role"))
    id_type = None
    if system == "urn:dicom:uid" and role is not None and role.code == "3":
        id_type = Code("110180", "DCM", "Study Instance UID")
    elif type_code is not None and type_code.code == "1" and role is not None and role.code == "1":
        id_type = Code("2", "RFC-3881", "Patient Number")
    query = _text(entity.get("query"))
    return ParticipantObject(
        object_id=_identifier(what),
        type_code=type_code.code if type_code else None,
        role=role.code if role else None,
        id_type=id_type,
        name=_text(entity.get("name")),
        details=tuple(details),
        query=_b64(query) if query is not None else None,
    )


def parse_fhir(resource: Any) -> Message:
    """The FHIR R4 ``AuditEvent`` resource (parsed JSON) as a ``Message``.

    Raises ``MessageRejected`` with reason ``not-fhir-auditevent`` (another resource,
    no ``type``) or ``bad-time`` (no ``recorded`` or ``period.start``).
    """
    data = _dict(resource)
    if data.get("resourceType") != "AuditEvent":
        found = data.get("resourceType") if data else type(resource).__name__
        raise MessageRejected("not-fhir-auditevent", f"not a FHIR AuditEvent resource: {str(found)[:64]!r}")
    event_id = _coding(data.get("type"))
    if event_id is None:
        raise MessageRejected("not-fhir-auditevent", "the AuditEvent has no type code")
    notes: list[str] = []
    recorded = _text(data.get("recorded")) or _text(_dict(data.get("period")).get("start"))
    source = _dict(data.get("source"))
    outcome = data.get("outcome")
    return Message(
        format="fhir",
        event_id=event_id,
        occurred_at=parse_time(recorded, notes),
        action=_text(data.get("action")),
        type_codes=tuple(c for c in (_coding(s) for s in _list(data.get("subtype"))) if c is not None),
        outcome=outcome if isinstance(outcome, str) else _fhir_outcome(outcome),
        description=_text(data.get("outcomeDesc")),
        audit_source_id=_identifier(source.get("observer")) or None,
        audit_site_id=_text(source.get("site")),
        participants=tuple(_agent(_dict(a)) for a in _list(data.get("agent"))),
        objects=tuple(_entity(_dict(e)) for e in _list(data.get("entity"))),
        message_id=_text(data.get("id")),
        notes=tuple(notes),
    )


def _fhir_outcome(value: Any) -> str:
    """FHIR R5 style ``outcome.code`` (a Coding), else success."""
    code = _coding(_dict(value).get("code")) if isinstance(value, dict) else None
    return code.code if code is not None else "0"


def fhir_resources(document: Any) -> Iterator[Any]:
    """The AuditEvent resources of a parsed document: itself, or a Bundle's entries."""
    data = _dict(document)
    if data.get("resourceType") == "Bundle":
        for entry in _list(data.get("entry")):
            yield _dict(entry).get("resource")
    else:
        yield document


def parse_fhir_json(data: bytes) -> Message:
    """One FHIR AuditEvent in JSON text (UTF-8). Raises ``MessageRejected`` (reason
    ``bad-json`` for text that is not JSON or nests too deep, else as ``parse_fhir``)."""
    try:
        document = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise MessageRejected("bad-json", f"not JSON: {str(exc)[:200]}") from None
    return parse_fhir(document)
