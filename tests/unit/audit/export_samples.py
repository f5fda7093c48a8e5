"""Sample events for the export tests: one full event per type, and a hypothesis strategy."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import strategies as st

from pacsguard.audit.dicom_codes import EVENT_MAPPINGS
from pacsguard.domain import Actor, AuditEvent, DecisionRef, ObjectRef, Outcome
from pacsguard.domain.events import JsonValue

T0 = datetime(2026, 11, 23, 12, 0, 0, 123456, tzinfo=UTC)

ACTOR = Actor(
    principal_id="dr.house",
    roles=("radiologist", "teacher"),
    zone="hospital/radiology",
    session_id="s-1",
    ip="192.0.2.7",
    device_id="ws-12",
    user_agent="Mozilla/5.0",
    country="CH",
    ae_title="VIEWER1",
    auth_strength=2,
)
OBJECTS = ObjectRef(
    patient_id="PAT-001",
    study_uid="1.2.826.0.1.3680043.8.498.1",
    series_uid="1.2.826.0.1.3680043.8.498.1.1",
    instance_uid="1.2.826.0.1.3680043.8.498.1.1.1",
    count=12,
    bytes=3_400_000,
    share_id="sh-9",
    target_principal="nurse.joy",
    zone="hospital/radiology",
)


def sample(event_type: str, seq: int = 1, outcome: Outcome = Outcome.SUCCESS) -> AuditEvent:
    """A fully populated event of ``event_type``."""
    return AuditEvent(
        type=event_type,
        occurred_at=T0 + timedelta(seconds=seq),
        outcome=outcome,
        actor=ACTOR,
        objects=OBJECTS,
        decision=DecisionRef(effect="permit", rule_ids=("r1", "r2"), agreement="ag-1", delegation=("d1",)),
        detail={"query": {"PatientID": "PAT-001", "ModalitiesInStudy": "CT"}, "reason": "routine"},
        seq=seq,
    )


ALL_TYPES = sorted(EVENT_MAPPINGS)

_text = st.text(max_size=30)  # includes controls and lone surrogates
_opt = st.none() | _text
_json: st.SearchStrategy[JsonValue] = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | _text,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_text, inner, max_size=3),
    max_leaves=8,
)

events = st.builds(
    AuditEvent,
    type=st.sampled_from(ALL_TYPES) | _text,
    occurred_at=st.datetimes(timezones=st.just(UTC)),
    outcome=st.sampled_from(Outcome),
    actor=st.builds(
        Actor,
        principal_id=_opt,
        roles=st.lists(_text, max_size=3).map(tuple),
        zone=_opt,
        session_id=_opt,
        ip=_opt,
        device_id=_opt,
        user_agent=_opt,
        country=_opt,
        ae_title=_opt,
        auth_strength=st.none() | st.integers(0, 4),
    ),
    objects=st.builds(
        ObjectRef,
        patient_id=_opt,
        study_uid=_opt,
        series_uid=_opt,
        instance_uid=_opt,
        count=st.none() | st.integers(),
        bytes=st.none() | st.integers(),
        share_id=_opt,
        target_principal=_opt,
        zone=_opt,
    ),
    decision=st.none()
    | st.builds(
        DecisionRef,
        effect=_text,
        rule_ids=st.lists(_text, max_size=3).map(tuple),
        agreement=_opt,
        delegation=st.lists(_text, max_size=2).map(tuple),
        break_glass_reason=_opt,
    ),
    detail=st.dictionaries(_text, _json, max_size=4),
    seq=st.none() | st.integers(min_value=0, max_value=2**62),
)
