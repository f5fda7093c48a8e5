"""The durable tail: alerts stored once by key, cursor and snapshot committed together,
history beyond the horizon raises no live alert, incidents pin evidence and scope."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import Engine as DbEngine
from sqlalchemy import update

from pacsguard.audit import AuditLog
from pacsguard.clock import FakeClock
from pacsguard.domain.events import Actor, AuditEvent, ObjectRef, Outcome
from pacsguard.monitor import Engine, load_rules
from pacsguard.monitor.incidents import IncidentState
from pacsguard.monitor.service import MonitorOptions, MonitorService
from pacsguard.storage.monitor_tables import monitor_alerts

RULES = load_rules().rules
OPTIONS = MonitorOptions(channels=frozenset({"dashboard", "email"}))


@pytest.fixture
def log(engine: DbEngine, clock: FakeClock) -> Iterator[AuditLog]:
    with AuditLog(engine, clock=clock, signing_key=Ed25519PrivateKey.generate()) as opened:
        yield opened


def service(engine: DbEngine, clock: FakeClock, log: AuditLog, options: MonitorOptions = OPTIONS) -> MonitorService:
    return MonitorService(engine, lambda: Engine(RULES), clock=clock, options=options, sign_head=log.sign_head)


def failures(log: AuditLog, clock: FakeClock, n: int, user: str = "alice") -> None:
    for _ in range(n):
        clock.advance(seconds=5)
        log.emit(
            AuditEvent(
                "login.failure",
                clock.now(),
                outcome=Outcome.FAILURE,
                actor=Actor(principal_id=user, ip="10.1.1.1"),
                objects=ObjectRef(target_principal=user),
            )
        )


def test_an_alert_is_stored_once_and_a_restart_resumes_at_the_cursor(
    engine: DbEngine, clock: FakeClock, log: AuditLog
) -> None:
    first = service(engine, clock, log)
    failures(log, clock, 8)
    assert first.step() == 8
    assert first.store.alert_count() == 0
    failures(log, clock, 1)
    first.step()
    assert [s.alert.rule_id for s in first.store.alerts()] == ["auth.failed-logins-account"]
    assert first.step() == 0
    again = service(engine, clock, log)
    assert again.cursor == first.cursor == 8
    failures(log, clock, 3)
    again.step()
    assert first.store.alert_count() == 1  # suppressed by the restored snapshot, not re-raised


def test_a_redo_after_a_lost_checkpoint_stores_no_duplicate(engine: DbEngine, clock: FakeClock, log: AuditLog) -> None:
    failures(log, clock, 9)
    svc = service(engine, clock, log)
    svc.step()
    fresh = MonitorService(engine, lambda: Engine(RULES), clock=clock, options=OPTIONS)
    fresh.engine = Engine(RULES)  # as if the checkpoint were lost: the same events again
    fresh.step()
    assert svc.store.alert_count() == 1


def test_history_beyond_the_horizon_updates_state_but_raises_nothing_live(
    engine: DbEngine, clock: FakeClock, log: AuditLog
) -> None:
    failures(log, clock, 9)
    clock.advance(hours=2)
    svc = service(engine, clock, log)
    svc.step()
    [stored] = svc.store.alerts()
    assert not stored.live
    assert svc.store.deliveries() == []
    assert svc.store.incidents() == []
    assert svc.engine.snapshot()["last_seq"] == 8


def test_live_alerts_open_an_incident_with_evidence_pinned_and_scope(
    engine: DbEngine, clock: FakeClock, log: AuditLog
) -> None:
    log.emit(AuditEvent("study.export", clock.now(), actor=Actor("alice"), objects=ObjectRef("P1", "1.2.3")))
    failures(log, clock, 9)
    svc = service(engine, clock, log)
    svc.step()
    [incident] = svc.store.incidents()
    assert incident.subject == "actor.principal_id=alice"
    assert incident.state is IncidentState.OPEN
    assert (incident.evidence_from, incident.evidence_to) == (1, 9)
    assert incident.head is not None
    assert incident.head["size"] >= 10
    assert incident.step("preserve").done_at is not None
    assert incident.scope is not None
    assert incident.scope["exported"] == ["1.2.3"]
    assert incident.scope["patients"] == ["P1"]
    assert incident.time_to_alert == timedelta(seconds=40)
    channels = sorted((d.channel, d.state) for d in svc.store.deliveries())
    assert channels == [("dashboard", "delivered"), ("email", "pending")]
    assert svc.store.unhandled() == []


def test_a_redone_follow_up_keeps_the_pinned_head(engine: DbEngine, clock: FakeClock, log: AuditLog) -> None:
    failures(log, clock, 9)
    svc = service(engine, clock, log)
    svc.step()
    [pinned] = svc.store.incidents()
    log.emit(AuditEvent("study.read", clock.now(), actor=Actor("bob")))
    with engine.begin() as conn:  # as if the monitor died after its commit, before marking the follow-up done
        conn.execute(update(monitor_alerts).values(handled_at=None))
    svc.follow_up()
    [again] = svc.store.incidents()
    assert again.head == pinned.head
    assert again.step("preserve") == pinned.step("preserve")
