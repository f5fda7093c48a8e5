"""History (issue 8 point 3): a year of imported events teaches the monitor but raises no
alert storm — the alerts are stored as ``historical``, never notified, never contained —
and ``monitor replay`` over the same range shows what would have fired, as JSON Lines."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine as DbEngine

from pacsguard import config
from pacsguard.app import open_site
from pacsguard.audit import AuditLog
from pacsguard.audit.reader import LogReader
from pacsguard.cli import main
from pacsguard.clock import FakeClock
from pacsguard.domain.events import Actor, AuditEvent, EventSink, ObjectRef, Outcome
from pacsguard.monitor import Engine, load_rules
from pacsguard.monitor.service import MonitorOptions, MonitorService

RULES = load_rules().rules
NOW = datetime(2026, 11, 23, 10, tzinfo=UTC)
YEAR_AGO = NOW - timedelta(days=365)


def year_of_attacks(sink: EventSink, start: datetime = YEAR_AGO, months: int = 12) -> None:
    """Each month: alice logs in from her workstation; mallory fails 9 logins then exports 16 studies."""
    for month in range(months):
        at = start + timedelta(days=30 * month)
        sink.emit(AuditEvent("login.success", at, actor=Actor("alice", ip="10.0.0.5", device_id="ws-alice")))
        for _ in range(9):
            at += timedelta(seconds=20)
            failed = Actor("mallory", ip="198.51.100.7")
            sink.emit(AuditEvent("login.failure", at, outcome=Outcome.FAILURE, actor=failed,
                                 objects=ObjectRef(target_principal="mallory")))  # fmt: skip
        for i in range(16):
            at += timedelta(seconds=30)
            exporter = Actor("mallory", roles=("radiologist",), ip="198.51.100.7")
            sink.emit(AuditEvent("study.export", at, actor=exporter, objects=ObjectRef(study_uid=f"1.2.{month}.{i}")))


@pytest.fixture
def log(engine: DbEngine) -> Iterator[AuditLog]:
    with AuditLog(engine, clock=FakeClock(NOW)) as opened:
        yield opened


def test_a_year_of_imported_logs_makes_no_alert_storm(engine: DbEngine, log: AuditLog) -> None:
    year_of_attacks(log)
    clock = FakeClock(NOW)
    options = MonitorOptions(channels=frozenset({"dashboard", "email", "webhook"}))
    service = MonitorService(engine, lambda: Engine(RULES), clock=clock, options=options)
    while service.step():
        pass
    stored = service.store.alerts()
    assert len(stored) >= 24  # failed logins and export spikes, every month
    assert {s.state for s in stored} == {"historical"}
    assert service.store.deliveries() == []  # nothing notified
    assert service.store.incidents() == []  # no incident, so nothing contained
    assert service.store.unhandled() == []
    replayed = list(Engine(RULES).run(LogReader(engine).iter_events(YEAR_AGO, NOW)))
    assert sorted(a.key for a in replayed) == sorted(s.alert.key for s in stored)


def test_history_teaches_the_engine_what_is_normal(engine: DbEngine, log: AuditLog) -> None:
    year_of_attacks(log, start=NOW - timedelta(days=80), months=2)
    clock = FakeClock(NOW)
    service = MonitorService(engine, lambda: Engine(RULES), clock=clock)
    while service.step():
        pass
    known = Actor("alice", ip="10.0.0.5", device_id="ws-alice")
    log.emit(AuditEvent("login.success", NOW, actor=known))
    log.emit(AuditEvent("login.success", NOW, actor=Actor("alice", ip="10.0.0.5", device_id="kiosk-7")))
    service.step()
    live = [s for s in service.store.alerts() if s.live]
    assert [s.alert.rule_id for s in live] == ["auth.new-device"]  # the known workstation is no news


def test_the_horizon_is_measured_from_the_processing_clock(engine: DbEngine, log: AuditLog) -> None:
    year_of_attacks(log, start=NOW - timedelta(minutes=59), months=1)
    service = MonitorService(engine, lambda: Engine(RULES), clock=FakeClock(NOW + timedelta(minutes=5)))
    while service.step():
        pass
    states = {s.alert.rule_id: s.state for s in service.store.alerts()}
    assert states["auth.failed-logins-account"] == "historical"  # triggered 61 min before processing
    assert states["data.export-spike"] == "open"  # triggered 53 min before processing


@pytest.fixture
def site_with_history(make_site: Callable[..., Path]) -> Path:
    site = make_site()
    with open_site(config.load(site), FakeClock(NOW)) as opened:
        year_of_attacks(opened.audit)
    return site


def test_replay_over_the_site_log_writes_the_alerts_as_jsonl(
    site_with_history: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = site_with_history / "alerts.jsonl"
    since, until = YEAR_AGO.isoformat(), (YEAR_AGO + timedelta(days=45)).isoformat()
    argv = ["monitor", "replay", "--site", str(site_with_history), "--since", since, "--until", until]
    assert main([*argv, "--output", str(out)]) == 0
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert {line["rule_id"] for line in lines} >= {"auth.failed-logins-account", "data.export-spike"}
    failed = next(line for line in lines if line["rule_id"] == "auth.failed-logins-account")
    assert (failed["user"], failed["ip"], failed["severity"]) == ("mallory", None, "high")
    assert failed["first_seq"] == failed["evidence"][0] < failed["trigger_seq"] == failed["evidence"][-1]
    first, trigger = datetime.fromisoformat(failed["first_event_at"]), datetime.fromisoformat(failed["triggered_at"])
    assert trigger - first == timedelta(seconds=160)
    assert YEAR_AGO <= first < trigger < YEAR_AGO + timedelta(days=45)
    assert len([line for line in lines if line["rule_id"] == "data.export-spike"]) == 2  # two months in range
    with open_site(config.load(site_with_history)) as opened:
        [used] = [e for e in LogReader(opened.engine).iter_events(None, None) if e.type == "audit.log.used"]
    assert used.detail["purpose"] == "monitor replay"
