"""The structural read of canonical bytes in ``verify`` agrees with a JSON parse, and escapes fall back."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import Engine, text

from pacsguard.audit import verify
from pacsguard.audit._rowcheck import _columns
from pacsguard.audit.canonical import prepare
from pacsguard.audit.store import to_us
from pacsguard.clock import FakeClock
from pacsguard.domain.events import Actor, AuditEvent, DecisionRef, ObjectRef
from tests.unit.audit.conftest import OpenLog

texts = st.one_of(st.none(), st.text(max_size=12), st.sampled_from(['a"b', "c\\d", "}", '},"decision":', "Zürich"]))


@given(
    texts,
    texts,
    texts,
    texts,
    st.dictionaries(st.text(max_size=6), texts, max_size=3),
    st.integers(0, 2**40),
    st.booleans(),
)
def test_the_structural_read_agrees_with_json(
    principal: str | None,
    ip: str | None,
    patient: str | None,
    study: str | None,
    detail: dict[str, str | None],
    us: int,
    decided: bool,
) -> None:
    when = datetime(2020, 1, 1, tzinfo=UTC) + timedelta(microseconds=us)
    event = AuditEvent(
        "study.read",
        when,
        actor=Actor(principal, ("r",), ip=ip, auth_strength=2),
        objects=ObjectRef(patient_id=patient, study_uid=study, count=3),
        decision=DecisionRef("permit", ("rule",)) if decided else None,
        detail=detail,
    )
    data = prepare(event).canonical(9)
    form = json.loads(data)
    expected = (
        9,
        to_us(datetime.fromisoformat(form["occurred_at"][:-1]).replace(tzinfo=UTC)),
        form["type"],
        form["outcome"],
        form["actor"].get("principal_id"),
        form["actor"].get("ip"),
        form["objects"].get("patient_id"),
        form["objects"].get("study_uid"),
    )
    read = _columns(data)
    assert read is None or read == expected
    if b"\\" not in data:
        assert read == expected  # the fast read covers every event without an escape


def test_a_changed_column_of_an_escaped_event_is_found(open_log: OpenLog, clock: FakeClock, engine: Engine) -> None:
    log = open_log()
    for i in range(6):
        log.emit(AuditEvent("study.read", clock.now(), actor=Actor(f'o"brien\\{i}'), objects=ObjectRef("P1")))
    log.sign_head()
    report = verify(engine, None)
    assert report.ok, report.findings
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(text("ALTER TABLE audit_events DISABLE TRIGGER USER"))
        conn.execute(text("UPDATE audit_events SET principal_id = 'someone' WHERE seq = 4"))
        if engine.dialect.name == "postgresql":
            conn.execute(text("ALTER TABLE audit_events ENABLE TRIGGER USER"))
    report = verify(engine, None)
    first = report.first()
    assert first is not None
    assert (first.seq, first.kind) == (4, "altered")
