"""Two monitor instances on one database (both backends): one leads and consumes, the
other stands by; when the leader goes, the standby takes over from the last checkpoint,
missing nothing and doing nothing twice."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator

import pytest
from sqlalchemy import Engine as DbEngine

from pacsguard.audit import AuditLog
from pacsguard.clock import FakeClock
from pacsguard.domain.events import Actor, AuditEvent, ObjectRef, Outcome
from pacsguard.monitor import Engine, load_rules
from pacsguard.monitor.leader import FileLeadership, PgLeadership, leadership_for, someone_leads
from pacsguard.monitor.service import MonitorService
from pacsguard.storage import make_engine

RULES = load_rules().rules


@pytest.fixture
def log(engine: DbEngine, clock: FakeClock) -> Iterator[AuditLog]:
    with AuditLog(engine, clock=clock) as opened:
        yield opened


def failures(log: AuditLog, clock: FakeClock, user: str, n: int = 9) -> None:
    for _ in range(n):
        clock.advance(seconds=5)
        failed = Actor(principal_id=user, ip=f"10.1.1.{len(user)}")  # one IP per user: no IP-burst alert
        log.emit(AuditEvent("login.failure", clock.now(), outcome=Outcome.FAILURE, actor=failed,
                            objects=ObjectRef(target_principal=user)))  # fmt: skip


@pytest.fixture
def instance(engine: DbEngine, clock: FakeClock) -> Iterator[Callable[[], MonitorService]]:
    """Makes monitors, each with its own engine (connection pool) as another gateway
    process would have; releases and closes them afterwards."""
    made: list[tuple[MonitorService, DbEngine]] = []

    def make() -> MonitorService:
        own = make_engine(engine.url.render_as_string(hide_password=False))
        made.append((MonitorService(own, lambda: Engine(RULES), clock=clock, leader=leadership_for(own)), own))
        return made[-1][0]

    yield make
    for service, own in made:
        if service.leader is not None:
            service.leader.release()
        own.dispose()


def test_the_lock_fits_the_backend(engine: DbEngine) -> None:
    expected = PgLeadership if engine.dialect.name == "postgresql" else FileLeadership
    assert isinstance(leadership_for(engine), expected)


def test_one_leads_the_other_stands_by_then_takes_over(
    instance: Callable[[], MonitorService], engine: DbEngine, clock: FakeClock, log: AuditLog
) -> None:
    first, second = instance(), instance()
    assert not someone_leads(engine)
    assert first.lead()
    assert someone_leads(engine)
    assert not second.lead()
    failures(log, clock, "alice")
    assert first.step() == 9
    assert first.store.alert_count() == 1
    assert first.leader is not None
    first.leader.release()  # the first gateway goes away
    assert second.lead()
    assert second.cursor == first.cursor == 8  # resumed from the first one's checkpoint
    assert not first.lead()
    failures(log, clock, "alice", 3)  # within alice's suppression: no new alert
    failures(log, clock, "bob")
    assert second.step() == 12
    assert sorted(s.alert.subject for s in second.store.alerts()) == [
        "actor.principal_id=alice",
        "actor.principal_id=bob",
    ]


def test_a_dead_leaders_lock_frees_without_release(
    instance: Callable[[], MonitorService], clock: FakeClock, log: AuditLog
) -> None:
    first, second = instance(), instance()
    assert first.lead()
    leader = first.leader
    if isinstance(leader, PgLeadership):
        leader._drop()  # the session ends as if the process died: PostgreSQL drops the lock
    else:
        assert isinstance(leader, FileLeadership)
        assert leader._fd is not None
        os.close(leader._fd)  # the kernel drops an flock with its last descriptor
        leader._fd = None
    deadline = time.monotonic() + 30
    while not second.lead() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert second.leader is not None
    assert second.leader.held


def test_running_instances_consume_once(
    instance: Callable[[], MonitorService], clock: FakeClock, log: AuditLog
) -> None:
    first, second = instance(), instance()
    stop = threading.Event()
    threads = [threading.Thread(target=s.run, args=(stop,), daemon=True) for s in (first, second)]
    for thread in threads:
        thread.start()
    failures(log, clock, "alice")
    deadline = time.monotonic() + 60
    while first.store.alert_count() == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    stop.set()
    for thread in threads:
        thread.join(30)
    processed = sorted(s.engine.stats().processed for s in (first, second))
    assert processed == [0, 9]  # one consumed everything, the other stood by
    assert first.store.alert_count() == 1
