"""The whole loop through the real paths: credential stuffing through the directory's
login, a success, an export spike through the audit log (as the gateway emits it); the
alerts fire, the incident forms with the right scope, automatic containment locks the
account and ends its sessions, and the attacker's next request is refused."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from pacsguard import config
from pacsguard.app import Site, open_site
from pacsguard.audit.reader import LogReader
from pacsguard.clock import FakeClock
from pacsguard.directory import Client, Operator, PrincipalKind
from pacsguard.domain import RoleRef
from pacsguard.domain.events import Actor, AuditEvent, ObjectRef
from pacsguard.errors import AccountLocked, InvalidCredentials, TokenError
from pacsguard.monitor.incidents import IncidentState
from pacsguard.monitor.wiring import open_monitor

PASSWORD = "Correct-horse-42"
ATTACKER = Client(ip="203.0.113.9", device_id="attacker-box", user_agent="curl/8")
OPERATOR = Operator("test")


@pytest.fixture
def site(make_site: Callable[..., Path]) -> Iterator[Site]:
    with open_site(config.load(make_site()), FakeClock()) as opened:
        d = opened.directory
        for pid in ("olga", "alice"):
            d.principals.create(pid, kind=PrincipalKind.PERSON, display_name=pid, zone="north", by=OPERATOR)
            d.auth.set_password(pid, PASSWORD, by=OPERATOR)
        d.assignments.grant("olga", RoleRef("north", "security-officer"), by=OPERATOR)
        d.assignments.grant("alice", RoleRef("north", "radiologist"), by=OPERATOR)
        yield opened


def test_stuffing_then_success_then_export_spike_is_contained(site: Site) -> None:
    clock = site.clock
    assert isinstance(clock, FakeClock)
    clock.advance(hours=3)  # the setup's admin alerts fall outside the live horizon
    monitor = open_monitor(None, site.engine, site.audit, site.directory, clock)
    monitor.service.step()
    before = monitor.service.store.alert_count()
    for _ in range(6):
        clock.advance(seconds=20)
        with pytest.raises(InvalidCredentials):
            site.directory.auth.login("alice", "Password-guess-1", client=ATTACKER)
    clock.advance(seconds=20)
    issued = site.directory.auth.login("alice", PASSWORD, client=ATTACKER)
    session = site.directory.sessions.validate(issued.secret, ATTACKER)
    studies = [f"1.2.840.99.{n}" for n in range(16)]
    for n, uid in enumerate(studies):
        clock.advance(seconds=30)
        site.audit.emit(
            AuditEvent(
                "study.export",
                clock.now(),
                actor=Actor("alice", ("radiologist",), session_id=session.id, ip=ATTACKER.ip),
                objects=ObjectRef(patient_id=f"P{n % 4}", study_uid=uid),
            )
        )
    clock.advance(seconds=1)
    monitor.service.step()

    fired = {s.alert.rule_id for s in monitor.service.store.alerts()[: monitor.service.store.alert_count() - before]}
    assert {"auth.success-after-failures", "data.export-spike"} <= fired
    [incident] = [i for i in monitor.service.store.incidents() if i.subject == "actor.principal_id=alice"]
    assert incident.state is IncidentState.CONTAINED
    assert incident.scope is not None
    assert incident.scope["exported"] == sorted(studies)
    assert incident.scope["patients"] == ["P0", "P1", "P2", "P3"]
    assert incident.head is not None
    assert incident.step("preserve").done_at is not None
    assert incident.step("contain").by == "rule:auth.success-after-failures"
    assert incident.time_to_contain is not None

    with pytest.raises(TokenError):
        site.directory.sessions.validate(issued.secret, ATTACKER)
    with pytest.raises(AccountLocked):
        site.directory.auth.login("alice", PASSWORD, client=ATTACKER)
    types = [e.type for e in LogReader(site.engine).iter_events(None, None)]
    assert "containment.account_locked" in types
    assert "containment.sessions_revoked" in types
