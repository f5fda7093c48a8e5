"""FHIR R4 AuditEvent: every event type parses with fhir.resources (R4B, the R4-compatible models)."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from typing import Any

import pytest
from fhir.resources.R4B.auditevent import AuditEvent as FhirAuditEvent
from hypothesis import given, settings

from pacsguard.audit.export_dicom import AuditSource
from pacsguard.audit.export_fhir import EVENT_TYPE_SYSTEM, to_fhir, to_fhir_json
from pacsguard.domain import Actor, AuditEvent, Outcome
from tests.unit.audit.export_samples import ALL_TYPES, events, sample

SOURCE = AuditSource(source_id="pacsguard@test", site_id="HOSPITAL")
DCM = "http://dicom.nema.org/resources/ontology/DCM"


def _parse(resource: dict[str, Any]) -> Any:
    """The parsed resource, typed loosely: the tests walk optional fields they know are set."""
    return FhirAuditEvent.model_validate(resource)


@pytest.mark.parametrize("event_type", ALL_TYPES)
def test_every_event_type_parses(event_type: str) -> None:
    parsed = _parse(to_fhir(sample(event_type, seq=5), SOURCE))
    assert parsed.id == "pacsguard-5"
    codes = {(c.system, c.code) for c in parsed.subtype or []}
    assert (EVENT_TYPE_SYSTEM, event_type) in codes
    assert parsed.source.site == "HOSPITAL"


def test_the_parser_rejects_a_broken_resource() -> None:
    broken = to_fhir(sample("login.success"))
    del broken["recorded"]
    with pytest.raises(ValueError, match="recorded"):
        _parse(broken)


def test_study_read_carries_codes_agent_and_entities() -> None:
    parsed = _parse(to_fhir(sample("study.read", outcome=Outcome.DENIED), SOURCE))
    assert (parsed.type.system, parsed.type.code) == (DCM, "110103")
    assert parsed.action == "R"
    assert parsed.outcome == "4"
    user, own = parsed.agent
    assert user.requestor is True
    assert user.who.identifier.value == "dr.house"
    assert (user.network.address, user.network.type) == ("192.0.2.7", "2")
    assert own.requestor is False
    patient, study = parsed.entity
    assert (patient.what.identifier.value, patient.type.code, patient.role.code) == ("PAT-001", "1", "1")
    assert (study.what.identifier.value, study.type.code, study.role.code) == ("1.2.826.0.1.3680043.8.498.1", "2", "3")


def test_login_subtype_is_dicom_login() -> None:
    parsed = _parse(to_fhir(sample("login.failure", outcome=Outcome.FAILURE)))
    assert (parsed.type.code, parsed.outcome) == ("110114", "4")
    assert ("110122", DCM) in {(c.code, c.system) for c in parsed.subtype or []}


def test_query_entity_holds_the_query() -> None:
    parsed = _parse(to_fhir(sample("study.query")))
    (query,) = parsed.entity
    assert query.role.code == "24"
    assert b"ModalitiesInStudy" in query.query  # fhir.resources decodes base64Binary
    assert b"ModalitiesInStudy" in base64.b64decode(to_fhir(sample("study.query"))["entity"][0]["query"])


def test_system_event_has_pacsguard_as_requestor_and_json_is_one_line() -> None:
    event = AuditEvent(type="policy.reloaded", occurred_at=sample("x").occurred_at, actor=Actor())
    line = to_fhir_json(event)
    assert "\n" not in line
    (own,) = _parse(json.loads(line)).agent
    assert own.requestor is True


@settings(max_examples=150, deadline=None)
@given(events)
def test_hostile_values_still_parse(event: AuditEvent) -> None:
    _parse(json.loads(to_fhir_json(event)))


def test_security_alert_subject_has_the_alert_description() -> None:
    parsed = _parse(to_fhir(sample("admin.role.grant")))
    assert (parsed.type.code, parsed.subtype[0].code) == ("110113", "110136")
    (subject,) = parsed.entity
    assert subject.what.identifier.value == "urn:pacsguard:principal:nurse.joy"
    assert (subject.type.code, subject.role.code) == ("2", "13")
    assert subject.detail[0].type == "Alert Description"


def test_an_event_type_with_line_breaks_still_makes_a_valid_code() -> None:
    event = AuditEvent("0\r\n0", datetime(2026, 1, 1, tzinfo=UTC), seq=1)
    parsed = _parse(json.loads(to_fhir_json(event)))
    assert "0 0" in [c.code for c in parsed.subtype]
