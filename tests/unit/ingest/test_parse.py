"""Parsing external audit messages: DICOM A.5 XML (hardened), FHIR AuditEvent, the mapping table."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime

import pytest

from pacsguard.audit.dicom_codes import EVENT_MAPPINGS, ObjectKind
from pacsguard.audit.export_dicom import to_dicom_xml
from pacsguard.audit.export_fhir import to_fhir, to_fhir_json
from pacsguard.domain import Outcome
from pacsguard.errors import MessageRejected
from pacsguard.ingest import (
    MAPPING_TABLE,
    classify,
    fhir_resources,
    parse_dicom_xml,
    parse_fhir,
    parse_fhir_json,
    parse_payload,
    parse_syslog,
    to_event,
)
from tests.unit.audit.export_samples import ALL_TYPES, sample


def _carried(event_type: str) -> set[ObjectKind]:
    return set(EVENT_MAPPINGS[event_type].objects)


@pytest.mark.parametrize("event_type", ALL_TYPES)
def test_own_dicom_export_parses_back_to_the_same_event(event_type: str) -> None:
    original = sample(event_type, 3)
    back = to_event(parse_dicom_xml(to_dicom_xml(original)))
    assert back.type == event_type
    assert back.occurred_at == original.occurred_at
    assert back.outcome is Outcome.SUCCESS
    a, b = original.actor, back.actor
    assert (b.principal_id, b.ip, b.ae_title) == (a.principal_id, a.ip, a.ae_title)
    kinds = _carried(event_type)
    o, p = original.objects, back.objects
    assert p.patient_id == (o.patient_id if ObjectKind.PATIENT in kinds else None)
    if ObjectKind.STUDY in kinds:
        assert (p.study_uid, p.series_uid, p.instance_uid, p.count, p.bytes, p.share_id) == (
            o.study_uid, o.series_uid, o.instance_uid, o.count, o.bytes, o.share_id,
        )  # fmt: skip
    else:
        assert p.study_uid is None
    if ObjectKind.USER in kinds:
        assert p.target_principal == o.target_principal
    if ObjectKind.QUERY in kinds:
        assert back.detail["query"] == original.detail["query"]


@pytest.mark.parametrize("event_type", ALL_TYPES)
def test_own_fhir_export_parses_back_to_the_same_event(event_type: str) -> None:
    original = sample(event_type, 4)
    back = to_event(parse_fhir_json(to_fhir_json(original).encode()))
    assert back.type == event_type
    assert back.occurred_at == original.occurred_at
    assert (back.actor.principal_id, back.actor.ip, back.actor.ae_title) == ("dr.house", "192.0.2.7", "VIEWER1")
    if ObjectKind.STUDY in _carried(event_type):
        assert (back.objects.study_uid, back.objects.count, back.objects.instance_uid) == (
            original.objects.study_uid, 12, original.objects.instance_uid,
        )  # fmt: skip
    assert back.detail["external"]["message_id"] == "pacsguard-4"  # type: ignore[index,call-overload]


# The table alone (without the "pacsguard event X" hint) for the types whose DICOM form
# says what happened.
TABLE_ROUND_TRIP = [
    "login.success", "study.read", "study.store", "study.delete", "study.export", "study.query",
    "audit.log.used", "break_glass.granted", "session.revoked",
]  # fmt: skip


@pytest.mark.parametrize("event_type", TABLE_ROUND_TRIP)
def test_the_table_alone_maps_dicom_codes_back(event_type: str) -> None:
    message = parse_dicom_xml(to_dicom_xml(sample(event_type)))
    assert classify(message, trust_own_type=False) == event_type


def test_failures_map_to_their_failure_type() -> None:
    failed = parse_dicom_xml(to_dicom_xml(sample("login.success", outcome=Outcome.FAILURE)))
    assert classify(failed, trust_own_type=False) == "login.failure"
    refused = parse_dicom_xml(to_dicom_xml(sample("break_glass.granted", outcome=Outcome.DENIED)))
    assert classify(refused, trust_own_type=False) == "break_glass.refused"


def test_every_table_row_names_documented_types() -> None:
    for row in MAPPING_TABLE:
        assert row.success in EVENT_MAPPINGS
        assert row.failure in EVENT_MAPPINGS


def _dcm(event_id: str, action: str, *, type_code: str = "", outcome: str = "0", body: str = "") -> bytes:
    type_xml = f'<EventTypeCode csd-code="{type_code}" codeSystemName="DCM" displayName="t"/>' if type_code else ""
    return (
        f'<AuditMessage xmlns="http://example.org/atna"><EventIdentification EventActionCode="{action}" '
        f'EventDateTime="2026-03-01T10:00:00.5+01:00" EventOutcomeIndicator="{outcome}">'
        f'<EventID csd-code="{event_id}" codeSystemName="DCM" displayName="e"/>{type_xml}</EventIdentification>'
        '<ActiveParticipant UserID="ARCHIVE" UserIsRequestor="false" NetworkAccessPointID="pacs1" '
        'NetworkAccessPointTypeCode="1"/>'
        '<ActiveParticipant UserID="jdoe" AlternativeUserID="AETITLES=WS7" UserIsRequestor="true" '
        'NetworkAccessPointID="10.1.2.3" NetworkAccessPointTypeCode="2">'
        '<RoleIDCode csd-code="110153" codeSystemName="DCM" displayName="Source Role ID"/></ActiveParticipant>'
        '<AuditSourceIdentification AuditSourceID="ARCHIVE"/>'
        '<ParticipantObjectIdentification ParticipantObjectID="PID-9" ParticipantObjectTypeCode="1" '
        'ParticipantObjectTypeCodeRole="1"><ParticipantObjectIDTypeCode csd-code="2"/>'
        "</ParticipantObjectIdentification>"
        '<ParticipantObjectIdentification ParticipantObjectID="1.2.3.4" ParticipantObjectTypeCode="2" '
        'ParticipantObjectTypeCodeRole="3"><ParticipantObjectIDTypeCode csd-code="110180" codeSystemName="DCM"/>'
        '<ParticipantObjectDescription><SOPClass UID="1.2.840.10008.5.1.4.1.1.2" NumberOfInstances="7"/>'
        f"</ParticipantObjectDescription></ParticipantObjectIdentification>{body}</AuditMessage>"
    ).encode()


@pytest.mark.parametrize(
    ("event_id", "action", "type_code", "outcome", "expected"),
    [
        ("110114", "E", "110122", "0", "login.success"),
        ("110114", "E", "110122", "4", "login.failure"),
        ("110103", "R", "", "0", "study.read"),
        ("110103", "D", "", "0", "study.delete"),
        ("110104", "R", "", "0", "study.read"),
        ("110104", "C", "", "0", "study.store"),
        ("110106", "R", "", "0", "study.export"),
        ("110112", "E", "", "0", "study.query"),
        ("110113", "E", "110132", "4", "access.denied"),
        ("110100", "E", "110120", "0", "external.other"),  # Application Start: no mapping
        ("110110", "U", "", "0", "external.other"),  # Patient Record: no mapping
    ],
)
def test_a_foreign_message_maps_by_the_table(
    event_id: str, action: str, type_code: str, outcome: str, expected: str
) -> None:
    event = to_event(parse_dicom_xml(_dcm(event_id, action, type_code=type_code, outcome=outcome)))
    assert event.type == expected
    assert event.occurred_at == datetime(2026, 3, 1, 9, 0, 0, 500000, tzinfo=UTC)
    assert (event.actor.principal_id, event.actor.ip, event.actor.ae_title) == ("jdoe", "10.1.2.3", "WS7")
    assert (event.objects.patient_id, event.objects.study_uid, event.objects.count) == ("PID-9", "1.2.3.4", 7)
    external = event.detail["external"]
    assert isinstance(external, dict)
    assert external["event_id"] == [event_id, "DCM", "e"]  # the codes stay, mapped or not
    assert external["action"] == action
    assert external["audit_source_id"] == "ARCHIVE"


def test_a_sender_cannot_claim_a_type_its_codes_contradict() -> None:
    body = _dcm("110103", "R").replace(b'EventOutcomeIndicator="0">', b'EventOutcomeIndicator="0">', 1)
    forged = body.replace(b"</EventIdentification>", b"<EventOutcomeDescription>pacsguard event break_glass.granted"
                          b"</EventOutcomeDescription></EventIdentification>")  # fmt: skip
    assert to_event(parse_dicom_xml(forged)).type == "study.read"


XXE = b'<?xml version="1.0"?><!DOCTYPE m [<!ENTITY x SYSTEM "file:///etc/passwd">]><AuditMessage>&x;</AuditMessage>'
BOMB = (
    b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
    + b"".join(
        f'<!ENTITY lol{i} "{("&lol" + (str(i - 1) if i > 1 else "") + ";") * 10}">'.encode() for i in range(1, 10)
    )
    + b"]><AuditMessage>&lol9;</AuditMessage>"
)
DOCTYPE_ONLY = b'<!DOCTYPE AuditMessage SYSTEM "http://example.org/a.dtd"><AuditMessage/>'


@pytest.mark.parametrize("data", [XXE, BOMB, DOCTYPE_ONLY], ids=["external-entity", "billion-laughs", "doctype"])
def test_xml_with_a_dtd_is_refused_before_parsing(data: bytes) -> None:
    with pytest.raises(MessageRejected) as caught:
        parse_dicom_xml(data)
    assert caught.value.reason == "xml-dtd"


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (_dcm("110103", "R")[:-40], "bad-xml"),
        (b"<Other/>", "not-audit-message"),
        (b"<AuditMessage><EventIdentification/></AuditMessage>", "not-audit-message"),
        (_dcm("110103", "R").replace(b"2026-03-01T10:00:00.5+01:00", b"yesterday"), "bad-time"),
    ],
    ids=["truncated", "other-root", "no-event-id", "bad-time"],
)
def test_malformed_dicom_is_refused_with_a_reason(data: bytes, reason: str) -> None:
    with pytest.raises(MessageRejected) as caught:
        parse_dicom_xml(data)
    assert caught.value.reason == reason


def test_a_time_without_zone_is_utc_and_noted() -> None:
    message = parse_dicom_xml(_dcm("110103", "R").replace(b"+01:00", b""))
    assert message.occurred_at == datetime(2026, 3, 1, 10, 0, 0, 500000, tzinfo=UTC)
    assert message.notes


def test_a_fhir_bundle_yields_each_audit_event() -> None:
    resources = [to_fhir(sample("study.read", i)) for i in (1, 2)]
    bundle = {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": r} for r in resources]}
    events = [to_event(parse_fhir(r)) for r in fhir_resources(json.loads(json.dumps(bundle)))]
    assert [e.type for e in events] == ["study.read", "study.read"]


@pytest.mark.parametrize(
    ("data", "reason"),
    [(b'{"resourceType": "Patient"}', "not-fhir-auditevent"), (b"{nope", "bad-json"),
     (b'{"resourceType": "AuditEvent", "type": {"code": "110100"}}', "bad-time")],
)  # fmt: skip
def test_bad_fhir_is_refused(data: bytes, reason: str) -> None:
    with pytest.raises(MessageRejected) as caught:
        parse_fhir_json(data)
    assert caught.value.reason == reason


def test_rfc5424_header_and_bom_payload() -> None:
    xml = to_dicom_xml(sample("study.read"))
    record = parse_syslog(
        b'<85>1 2026-11-23T12:00:00Z pacs1 dcm4chee 42 IHE+RFC-3881 [x@1 a="b\\]"] \xef\xbb\xbf' + xml
    )
    assert (record.hostname, record.app_name, record.procid, record.msgid) == (
        "pacs1",
        "dcm4chee",
        "42",
        "IHE+RFC-3881",
    )
    assert record.payload == xml
    assert parse_payload(record.payload).event_id.code == "110103"


def test_rfc3164_from_an_old_device() -> None:
    xml = to_dicom_xml(sample("study.read"))
    record = parse_syslog(b"<85>Nov  3 12:00:00 modality7 atna: " + xml)
    assert (record.rfc, record.hostname, record.payload) == ("3164", "modality7", xml)


def test_a_bare_payload_without_header() -> None:
    payload = to_fhir_json(sample("login.success")).encode()
    assert parse_syslog(payload).rfc == "none"
    assert to_event(parse_payload(parse_syslog(payload).payload)).type == "login.success"


def test_invalid_utf8_is_refused() -> None:
    with pytest.raises(MessageRejected) as caught:
        parse_payload(b"<AuditMessage>\xff\xfe</AuditMessage>")
    assert caught.value.reason == "bad-utf8"


def test_base64_details_are_decoded() -> None:
    detail = base64.b64encode(b"1.2.3.4.5").decode()
    body = f'<ParticipantObjectIdentification ParticipantObjectID="x" ParticipantObjectTypeCode="2"><ParticipantObjectDetail type="k" value="{detail}"/></ParticipantObjectIdentification>'  # noqa: E501
    message = parse_dicom_xml(_dcm("110103", "R", body=body))
    assert message.objects[-1].details == (("k", "1.2.3.4.5"),)
