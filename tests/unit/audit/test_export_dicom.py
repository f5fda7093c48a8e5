"""DICOM PS3.15 A.5 audit messages: every event type is schema-valid and carries the right codes."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
from hypothesis import given, settings
from lxml import etree

from pacsguard.audit.dicom_codes import EVENT_MAPPINGS, PRIVATE_SCHEME, EventId, IdType, Type, mapping_for
from pacsguard.audit.export_dicom import AuditSource, to_dicom_xml
from pacsguard.domain import AuditEvent, Outcome
from tests.unit.audit.export_samples import ALL_TYPES, events, sample

SCHEMA = Path(__file__).parents[2] / "data" / "dicom_audit" / "audit-message.rng"
SOURCE = AuditSource(source_id="pacsguard@test", site_id="HOSPITAL", host="pacs.example")

# The event types pacsguard emits (issue 4); each must have a row in the mapping table.
EVENT_TYPES = """login.success login.failure mfa.enrolled mfa.failure session.created session.revoked
session.expired token.created token.revoked token.rejected password.changed principal.created principal.updated
account.locked account.unlocked account.disabled account.enabled admin.role.grant admin.role.revoke
delegation.created delegation.refused delegation.revoked policy.reloaded consent.created consent.revoked
break_glass.granted break_glass.refused study.query study.read study.store study.delete study.export
study.classify access.denied share.created share.opened share.revoked share.expired audit.log.used
audit.head.signed audit.pruned alert.raised incident.opened incident.updated containment.account_locked
containment.sessions_revoked containment.shares_expired containment.ip_blocked containment.mfa_reset
containment.device_suspended containment.undone containment.refused external.other external.rejected""".split()  # noqa: SIM905

_relaxng = etree.RelaxNG(etree.parse(str(SCHEMA)))


def _valid(xml: bytes) -> etree._Element:
    doc = etree.fromstring(xml)
    if not _relaxng.validate(doc):
        pytest.fail(f"schema errors: {_relaxng.error_log}\n{xml.decode()}")
    return doc


def _codes(doc: etree._Element, tag: str) -> list[tuple[str, str]]:
    return [(e.get("csd-code"), e.get("codeSystemName")) for e in doc.iter(tag)]  # type: ignore[misc]


def test_every_event_type_has_a_mapping_or_is_marked_private() -> None:
    assert set(EVENT_TYPES) == set(EVENT_MAPPINGS)
    private = {t for t, m in EVENT_MAPPINGS.items() if not m.dicom_equivalent}
    assert private == {
        "audit.head.signed", "audit.pruned", "alert.raised", "incident.opened", "incident.updated",
        "containment.undone", "containment.refused", "external.other", "external.rejected",
    }  # fmt: skip
    for name in private:
        assert [c.scheme for c in EVENT_MAPPINGS[name].type_codes] == [PRIVATE_SCHEME]


def test_the_schema_rejects_a_message_without_an_event() -> None:
    bad = b'<AuditMessage><ActiveParticipant UserID="x" UserIsRequestor="true"/></AuditMessage>'
    assert not _relaxng.validate(etree.fromstring(bad))


@pytest.mark.parametrize("event_type", ALL_TYPES)
@pytest.mark.parametrize("outcome", list(Outcome))
def test_every_event_type_is_schema_valid(event_type: str, outcome: Outcome) -> None:
    doc = _valid(to_dicom_xml(sample(event_type, outcome=outcome), SOURCE))
    ident = doc.find("EventIdentification")
    assert ident is not None
    expected = {Outcome.SUCCESS: "0", Outcome.DENIED: "4", Outcome.FAILURE: "4", Outcome.ERROR: "8"}[outcome]
    assert ident.get("EventOutcomeIndicator") == expected
    assert ident.get("EventActionCode") == EVENT_MAPPINGS[event_type].action
    assert f"pacsguard event {event_type}; seq 1" in (ident.findtext("EventOutcomeDescription") or "")


def test_key_codes_are_the_ps3_16_values() -> None:
    assert (EventId.USER_AUTHENTICATION.code, EventId.USER_AUTHENTICATION.scheme) == ("110114", "DCM")
    assert EventId.QUERY.code == "110112"
    assert EventId.INSTANCES_ACCESSED.code == "110103"
    assert EventId.BEGIN_TRANSFERRING.code == "110102"
    assert EventId.INSTANCES_TRANSFERRED.code == "110104"
    assert EventId.EXPORT.code == "110106"
    assert EventId.SECURITY_ALERT.code == "110113"
    assert EventId.PATIENT_RECORD.code == "110110"
    assert EventId.AUDIT_LOG_USED.code == "110101"
    assert EventId.APPLICATION_ACTIVITY.code == "110100"
    assert (Type.LOGIN.code, Type.LOGOUT.code) == ("110122", "110123")
    assert Type.EMERGENCY_OVERRIDE_STARTED.code == "110127"
    assert Type.USER_SECURITY_ATTRIBUTES_CHANGED.code == "110137"
    assert Type.SECURITY_ROLES_CHANGED.code == "110136"
    assert (IdType.STUDY_INSTANCE_UID.code, IdType.SOP_CLASS_UID.code) == ("110180", "110181")
    assert (IdType.PATIENT_NUMBER.code, IdType.PATIENT_NUMBER.scheme) == ("2", "RFC-3881")


def test_login_is_user_authentication_with_the_user_as_requestor() -> None:
    doc = _valid(to_dicom_xml(sample("login.success"), SOURCE))
    assert _codes(doc, "EventID") == [("110114", "DCM")]
    assert _codes(doc, "EventTypeCode") == [("110122", "DCM")]
    user, own = doc.findall("ActiveParticipant")
    assert user.get("UserID") == "dr.house"
    assert user.get("UserIsRequestor") == "true"
    assert (user.get("NetworkAccessPointID"), user.get("NetworkAccessPointTypeCode")) == ("192.0.2.7", "2")
    assert own.get("UserID") == "pacsguard@test"
    assert own.get("UserIsRequestor") == "false"
    assert _codes(own, "RoleIDCode") == [("110150", "DCM")]
    assert doc.find("AuditSourceIdentification").get("AuditEnterpriseSiteID") == "HOSPITAL"  # type: ignore[union-attr]


def test_session_end_is_a_logout() -> None:
    assert _codes(_valid(to_dicom_xml(sample("session.expired"))), "EventTypeCode") == [("110123", "DCM")]


def test_study_read_names_patient_and_study_with_their_roles() -> None:
    doc = _valid(to_dicom_xml(sample("study.read"), SOURCE))
    assert _codes(doc, "EventID") == [("110103", "DCM")]
    patient, study = doc.findall("ParticipantObjectIdentification")
    assert patient.get("ParticipantObjectID") == "PAT-001"
    assert (patient.get("ParticipantObjectTypeCode"), patient.get("ParticipantObjectTypeCodeRole")) == ("1", "1")
    assert _codes(patient, "ParticipantObjectIDTypeCode") == [("2", "RFC-3881")]
    assert study.get("ParticipantObjectID") == "1.2.826.0.1.3680043.8.498.1"
    assert (study.get("ParticipantObjectTypeCode"), study.get("ParticipantObjectTypeCodeRole")) == ("2", "3")
    assert _codes(study, "ParticipantObjectIDTypeCode") == [("110180", "DCM")]
    assert study.find("ParticipantObjectDescription/SOPClass").get("NumberOfInstances") == "12"  # type: ignore[union-attr]


def test_query_carries_the_query_base64_under_the_sop_class() -> None:
    doc = _valid(to_dicom_xml(sample("study.query"), SOURCE))
    assert _codes(doc, "EventID") == [("110112", "DCM")]
    (query,) = doc.findall("ParticipantObjectIdentification")
    assert _codes(query, "ParticipantObjectIDTypeCode") == [("110181", "DCM")]
    assert query.get("ParticipantObjectTypeCodeRole") == "3"
    assert b"ModalitiesInStudy" in base64.b64decode(query.findtext("ParticipantObjectQuery") or "")
    user, own = doc.findall("ActiveParticipant")
    assert _codes(user, "RoleIDCode") == [("110153", "DCM")]
    assert _codes(own, "RoleIDCode") == [("110152", "DCM")]


def test_break_glass_is_an_emergency_override_security_alert() -> None:
    doc = _valid(to_dicom_xml(sample("break_glass.granted")))
    assert _codes(doc, "EventID") == [("110113", "DCM")]
    assert _codes(doc, "EventTypeCode") == [("110127", "DCM")]


def test_unknown_event_type_is_still_exported_with_a_private_code() -> None:
    assert mapping_for("gateway.new_thing").dicom_equivalent is False
    doc = _valid(to_dicom_xml(sample("gateway.new_thing")))
    assert _codes(doc, "EventTypeCode") == [("gateway.new_thing", PRIVATE_SCHEME)]


def test_event_without_actor_has_pacsguard_as_requestor() -> None:
    from pacsguard.domain import Actor

    event = sample("policy.reloaded")
    bare = AuditEvent(type=event.type, occurred_at=event.occurred_at, actor=Actor())
    doc = _valid(to_dicom_xml(bare))
    (own,) = doc.findall("ActiveParticipant")
    assert own.get("UserIsRequestor") == "true"


@settings(max_examples=150, deadline=None)
@given(events)
def test_hostile_values_still_give_one_valid_line(event: AuditEvent) -> None:
    xml = to_dicom_xml(event)
    assert b"\n" not in xml
    _valid(xml)


def test_security_alert_subjects_carry_an_alert_description() -> None:
    doc = _valid(to_dicom_xml(sample("account.locked", outcome=Outcome.SUCCESS)))
    assert _codes(doc, "EventTypeCode") == [("110137", "DCM")]
    (subject,) = doc.findall("ParticipantObjectIdentification")
    assert subject.get("ParticipantObjectID") == "urn:pacsguard:principal:nurse.joy"
    assert (subject.get("ParticipantObjectTypeCode"), subject.get("ParticipantObjectTypeCodeRole")) == ("2", "13")
    assert _codes(subject, "ParticipantObjectIDTypeCode") == [("12", "RFC-3881")]
    (detail,) = subject.findall("ParticipantObjectDetail")
    assert detail.get("type") == "Alert Description"
    assert base64.b64decode(detail.get("value") or "") == b"account.locked (success): routine"


def test_blocked_ip_is_a_node_id_subject() -> None:
    event = sample("containment.ip_blocked")
    blocked = AuditEvent(type=event.type, occurred_at=event.occurred_at, detail={"ip": "203.0.113.9"}, seq=9)
    (subject,) = _valid(to_dicom_xml(blocked)).findall("ParticipantObjectIdentification")
    assert subject.get("ParticipantObjectID") == "203.0.113.9"
    assert _codes(subject, "ParticipantObjectIDTypeCode") == [("110182", "DCM")]


def test_session_expiry_is_requested_by_the_node() -> None:
    user, own = _valid(to_dicom_xml(sample("session.expired"))).findall("ActiveParticipant")
    assert (user.get("UserIsRequestor"), own.get("UserIsRequestor")) == ("false", "true")
