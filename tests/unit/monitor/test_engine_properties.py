"""Properties over arbitrary event streams: the engine never crashes, and a checkpoint
taken anywhere resumes to exactly the alerts of an uninterrupted run."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from pacsguard.domain.events import Actor, AuditEvent, JsonValue, ObjectRef, Outcome
from pacsguard.monitor import Alert, Engine, load_rules

RULES = load_rules().rules
TYPES = [*sorted({s.type for r in RULES for s in getattr(r, "events", [])}), "login.success", "session.refresh"]
START = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)

maybe = st.none() | st.sampled_from(["alice", "bob", "", "10.0.0.1", "not-an-ip", "1.2.3"])
value: st.SearchStrategy[JsonValue] = (
    st.none()
    | st.booleans()
    | st.integers(-(10**6), 10**6)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=5)
    | st.lists(st.integers(), max_size=2)
)
actors = st.builds(
    Actor,
    principal_id=maybe,
    roles=st.lists(st.sampled_from(["admin", "radiologist"]), max_size=2).map(tuple),
    ip=maybe,
    device_id=maybe,
    country=st.none() | st.sampled_from(["DE", "FR"]),
)
details = st.dictionaries(st.sampled_from(["download", "count", "recipient", "reason"]), value, max_size=3)


@st.composite
def streams(draw: st.DrawFn) -> list[AuditEvent]:
    n = draw(st.integers(1, 60))
    steps = draw(st.lists(st.integers(0, 900), min_size=n, max_size=n))
    events = []
    at = START
    for i, step in enumerate(steps, start=1):
        at += timedelta(seconds=step)
        events.append(
            AuditEvent(
                type=draw(st.sampled_from(TYPES)),
                occurred_at=at if draw(st.booleans()) else at.replace(tzinfo=None),
                outcome=draw(st.sampled_from(list(Outcome))),
                actor=draw(actors),
                objects=ObjectRef(study_uid=draw(st.none() | st.sampled_from(["1.2.1", "1.2.2", "1.2.3"]))),
                detail=draw(details),
                seq=i,
            )
        )
    return events


def _run(engine: Engine, events: list[AuditEvent]) -> list[Alert]:
    return [a for e in events for a in engine.process(e)]


@settings(max_examples=40, deadline=None)
@given(streams())
def test_arbitrary_events_never_crash_the_engine(events: list[AuditEvent]) -> None:
    engine = Engine(RULES)
    alerts = _run(engine, events)
    assert engine.stats().processed == len(events)
    assert all(a.evidence and a.trigger_seq <= len(events) for a in alerts)


@settings(max_examples=30, deadline=None)
@given(streams(), st.data())
def test_a_checkpoint_anywhere_resumes_exactly(events: list[AuditEvent], data: st.DataObject) -> None:
    cut = data.draw(st.integers(0, len(events)))
    straight = _run(Engine(RULES), events)
    first = Engine(RULES)
    before = _run(first, events[:cut])
    second = Engine(RULES)
    second.restore(json.loads(json.dumps(first.snapshot())))
    assert before + _run(second, events) == straight
