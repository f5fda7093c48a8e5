"""FHIR R4 AuditEvent resources (IHE Basic Audit Log Patterns) from pacsguard events.

The resource carries the same codes as the DICOM message (``dicom_codes``): ``type`` is
the PS3.15 EventID and ``subtype`` the EventTypeCodes, plus pacsguard's own event type
under ``urn:pacsguard:event-type``. ``agent`` holds the user (requestor, with network
address) and pacsguard itself; ``source`` is the observer; ``entity`` the patient, the
study and, for queries, the query (base64). The output is plain JSON-compatible data:
no FHIR library is needed at run time (the tests parse it with ``fhir.resources``).
"""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from pacsguard.audit.dicom_codes import Code, EventMapping, ObjectKind, mapping_for, outcome_indicator
from pacsguard.audit.export_dicom import (
    AUDIT_LOG_URI,
    STUDY_ROOT_FIND,
    AuditSource,
    alert_description,
    alert_subject,
    xml_safe,
)
from pacsguard.domain import AuditEvent, Outcome

__all__ = ["EVENT_TYPE_SYSTEM", "to_fhir", "to_fhir_json"]

DCM_SYSTEM = "http://dicom.nema.org/resources/ontology/DCM"
EVENT_TYPE_SYSTEM = "urn:pacsguard:event-type"
_ENTITY_TYPE = "http://terminology.hl7.org/CodeSystem/audit-entity-type"
_OBJECT_ROLE = "http://terminology.hl7.org/CodeSystem/object-role"
_SOURCE_TYPE = "http://terminology.hl7.org/CodeSystem/security-source-type"
_PARTICIPATION = "http://terminology.hl7.org/CodeSystem/v3-ParticipationType"
_ROLE_NAMES = {"1": "Patient", "3": "Report", "11": "Security User Entity", "13": "Security Resource", "24": "Query"}
_TYPE_NAMES = {"1": "Person", "2": "System Object"}
_SYSTEMS = {"DCM": DCM_SYSTEM, "RFC-3881": "http://terminology.hl7.org/CodeSystem/audit-entity-type"}


def _clean(text: str) -> str:
    """``text`` safe for FHIR strings: controls and lone surrogates become U+FFFD, never blank."""
    cleaned = xml_safe(text).strip()
    return cleaned or "-"


def _coding(code: Code) -> dict[str, str]:
    system = EVENT_TYPE_SYSTEM if code.scheme.startswith("99") else _SYSTEMS.get(code.scheme, code.scheme)
    # FHIR's ``code`` type allows no leading, trailing or repeated whitespace, nor line breaks.
    return {"system": system, "code": " ".join(_clean(code.code).split()), "display": _clean(code.meaning)}


def _recorded(moment: datetime) -> str:
    aware = moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
    return aware.astimezone(UTC).isoformat()


def _agents(event: AuditEvent, source: AuditSource) -> list[dict[str, Any]]:
    actor = event.actor
    agents: list[dict[str, Any]] = []
    if actor.principal_id is not None or actor.ip is not None:
        user: dict[str, Any] = {
            "type": {"coding": [{"system": _PARTICIPATION, "code": "IRCP", "display": "information recipient"}]},
            "who": {"identifier": {"value": _clean(actor.principal_id or "unknown")}},
            "requestor": True,
        }
        if actor.roles:
            user["role"] = [{"text": _clean(role)} for role in actor.roles if role.strip()] or None
            if user["role"] is None:
                del user["role"]
        if actor.ae_title:
            user["altId"] = _clean(actor.ae_title)
        if actor.ip:
            user["network"] = {"address": _clean(actor.ip), "type": "2"}
        if event.decision is not None and event.decision.rule_ids:
            user["policy"] = [f"urn:pacsguard:rule:{_uri_part(r)}" for r in event.decision.rule_ids]
        agents.append(user)
    agents.append(
        {
            "type": {"coding": [{"system": DCM_SYSTEM, "code": "110150", "display": "Application"}]},
            "who": {"display": _clean(source.source_id)},
            "requestor": not agents,
        }
    )
    return agents


def _uri_part(text: str) -> str:
    return quote(_clean(text), safe="") or "-"


def _entity(identifier: dict[str, str], type_code: str, role: str, **extra: Any) -> dict[str, Any]:
    return {
        "what": {"identifier": identifier},
        "type": {"system": _ENTITY_TYPE, "code": type_code, "display": _TYPE_NAMES[type_code]},
        "role": {"system": _OBJECT_ROLE, "code": role, "display": _ROLE_NAMES[role]},
        **extra,
    }


def _detail(kind: str, value: str) -> dict[str, str]:
    return {"type": kind, "valueString": _clean(value)}


def _study_entity(event: AuditEvent) -> dict[str, Any] | None:
    o = event.objects
    if o.study_uid is None or not o.study_uid.strip():
        return None
    details = [
        _detail(kind, str(value))
        for kind, value in (
            ("SeriesInstanceUID", o.series_uid),
            ("SOPInstanceUID", o.instance_uid),
            ("NumberOfInstances", o.count),
            ("Bytes", o.bytes),
            ("ShareLink", o.share_id),
        )
        if value is not None and str(value).strip()
    ]
    extra: dict[str, Any] = {"detail": details} if details else {}
    return _entity({"system": "urn:dicom:uid", "value": _clean(o.study_uid)}, "2", "3", **extra)


def _query_entity(event: AuditEvent) -> dict[str, Any]:
    query = event.detail.get("query")
    text = query if isinstance(query, str) else json.dumps(query, sort_keys=True, ensure_ascii=False)
    encoded = base64.b64encode(text.encode("utf-8", "surrogatepass")).decode("ascii")
    return _entity({"system": "urn:dicom:uid", "value": STUDY_ROOT_FIND}, "2", "24", query=encoded or None)


def _entities(event: AuditEvent, mapping: EventMapping) -> list[dict[str, Any]]:
    o = event.objects
    found: list[dict[str, Any] | None] = []
    for kind in mapping.objects:
        if kind is ObjectKind.PATIENT and o.patient_id and o.patient_id.strip():
            found.append(_entity({"value": _clean(o.patient_id)}, "1", "1"))
        elif kind is ObjectKind.STUDY:
            found.append(_study_entity(event))
        elif kind is ObjectKind.QUERY:
            found.append(_query_entity(event))
        elif kind is ObjectKind.AUDIT_LOG:
            found.append(_entity({"value": AUDIT_LOG_URI}, "2", "13"))
        elif (subject := alert_subject(event, kind)) is not None:
            object_id, _, name = subject
            alert = [_detail("Alert Description", alert_description(event))]
            found.append(_entity({"value": _clean(object_id)}, "2", "13", name=_clean(name), detail=alert))
    return [e for e in found if e is not None]


def to_fhir(event: AuditEvent, source: AuditSource | None = None) -> dict[str, Any]:
    """``event`` as a FHIR R4 AuditEvent resource (a JSON-compatible dict). Never raises."""
    source = source or AuditSource()
    mapping = mapping_for(event.type)
    own = Code(event.type, "99PACSGUARD", event.type) if "".join(event.type.split()) else None
    subtypes = [_coding(c) for c in mapping.type_codes]
    if own is not None and all(c.code != event.type for c in mapping.type_codes):
        subtypes.append(_coding(own))
    resource: dict[str, Any] = {
        "resourceType": "AuditEvent",
        "type": _coding(mapping.event_id),
        "subtype": subtypes or None,
        "action": mapping.action,
        "recorded": _recorded(event.occurred_at),
        "outcome": outcome_indicator(event.outcome),
        "agent": _agents(event, source),
        "source": {
            "site": _clean(source.site_id) if source.site_id else None,
            "observer": {"display": _clean(source.source_id)},
            "type": [{"system": _SOURCE_TYPE, "code": "4", "display": "Application Server"}],
        },
        "entity": _entities(event, mapping) or None,
    }
    if event.seq is not None:
        resource["id"] = f"pacsguard-{event.seq}"
    if event.outcome is not Outcome.SUCCESS:
        reason = event.detail.get("reason")
        resource["outcomeDesc"] = _clean(
            f"{event.outcome.value}: {reason}" if isinstance(reason, str) else event.outcome.value
        )
    cleaned: dict[str, Any] = _drop_none(resource)
    return cleaned


def _drop_none(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _drop_none(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_drop_none(v) for v in value]
    return value


def to_fhir_json(event: AuditEvent, source: AuditSource | None = None) -> str:
    """``event`` as one line of FHIR JSON (for NDJSON bulk files)."""
    return json.dumps(to_fhir(event, source), ensure_ascii=False, separators=(",", ":"), sort_keys=True)
