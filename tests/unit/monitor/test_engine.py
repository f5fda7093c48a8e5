"""The engine: suppression, sequence bookkeeping, bad events, memory bounds, checkpoints."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from pacsguard.clock import FakeClock
from pacsguard.domain.events import AuditEvent
from pacsguard.errors import SnapshotError
from pacsguard.monitor import Alert, Engine, Limits, Rule, SiteGeo, SiteNetworks, load_rules, parse_rule_file
from tests.unit.monitor.conftest import Feed, fired


def test_suppression_holds_repeats_back_for_the_period(feed: Feed) -> None:
    alerts = feed.many(30, "login.failure", every=5)
    assert len(fired(alerts, "auth.failed-logins-account")) == 1
    assert feed.engine.stats().suppressed == 21 + 9  # the account rule from the 10th, the IP rule from the 22nd
    feed.clock.advance(minutes=31)
    again = feed.many(9, "login.failure", every=5)
    assert len(fired(again, "auth.failed-logins-account")) == 1


def test_suppression_is_per_subject(feed: Feed) -> None:
    a = feed.many(9, "login.failure", user="alice", every=1)
    b = feed.many(9, "login.failure", user="bob", every=1)
    assert [x.subject for x in fired(a + b, "auth.failed-logins-account")] == [
        "actor.principal_id=alice",
        "actor.principal_id=bob",
    ]


def test_an_escalated_alert_is_not_suppressed_by_the_plain_one(feed: Feed) -> None:
    feed("login.success")
    feed.clock.advance(days=2)
    plain = fired([a for i in range(16) for a in feed("study.export", study=f"1.2.{i}")], "data.export-spike")
    feed.clock.advance(minutes=5)
    feed("login.success", device="new-laptop")
    urgent = fired(feed("study.export", study="1.2.99"), "data.export-spike")
    assert [a.severity.value for a in plain + urgent] == ["high", "urgent"]


def test_events_without_a_needed_field_are_counted_and_skipped(feed: Feed) -> None:
    feed.many(30, "login.failure", user=None, ip=None)
    feed("share.created", detail={})
    feed("study.query", detail={"count": "lots"})
    stats = feed.engine.stats()
    assert stats.missing["auth.failed-logins-account"] == 30
    assert stats.missing["auth.failed-logins-ip"] == 30
    assert stats.missing["share.recipients-rise"] == 1
    assert stats.alerts == 0


def test_malformed_events_never_crash(feed: Feed) -> None:
    bad_time = replace(feed.event("login.failure"), occurred_at="yesterday")  # type: ignore[arg-type]
    bad_detail = replace(feed.event("share.created"), detail=["not", "a", "mapping"])  # type: ignore[arg-type]
    assert feed.engine.process(bad_time) == []
    assert feed.engine.process(bad_detail) == []
    assert feed.engine.stats().malformed == 2
    assert fired(feed.many(9, "login.failure"), "auth.failed-logins-account")


def test_seq_order_duplicates_and_unsequenced_events_are_skipped(feed: Feed) -> None:
    events = [feed.event("login.failure") for _ in range(9)]
    engine = feed.engine
    assert [a for e in events[:8] for a in engine.process(e)] == []
    assert [a for e in events[:8] for a in engine.process(e)] == []  # replayed: already consumed
    assert engine.process(replace(events[8], seq=None)) == []
    assert fired(engine.process(events[8]), "auth.failed-logins-account")
    stats = engine.stats()
    assert (stats.processed, stats.duplicates, stats.unsequenced) == (9, 8, 1)
    assert engine.last_seq == 9


def test_keys_are_bounded_and_evictions_counted(default_rules: tuple[Rule, ...], clock: FakeClock) -> None:
    feed = Feed(Engine(default_rules, limits=Limits(max_keys=10)), clock)
    for i in range(25):
        feed("login.failure", user=f"user{i}", ip=f"192.0.2.{i}")
    evictions = feed.engine.stats().evictions
    assert evictions["auth.failed-logins-account"] == 15
    assert evictions["auth.failed-logins-ip"] == 15
    assert len(json.dumps(feed.engine.snapshot())) < 20_000


def test_events_per_key_are_bounded(default_rules: tuple[Rule, ...], clock: FakeClock) -> None:
    feed = Feed(Engine(default_rules, limits=Limits(max_events_per_key=5)), clock)
    alerts = feed.many(40, "login.failure", every=1)
    assert fired(alerts, "auth.failed-logins-account") == []  # never more than 5 kept
    assert fired(alerts, "auth.failed-logins-ip") == []


def test_country_comes_from_the_lookup_when_the_event_lacks_it(
    default_rules: tuple[Rule, ...], clock: FakeClock
) -> None:
    geo = SiteGeo(SiteNetworks({"10.0.0.0/8": "hospital LAN", "172.16.0.0/12": "VPN"}))
    feed = Feed(Engine(default_rules, geo=geo), clock)
    feed("login.success", country=None, ip="10.1.2.3")
    clock.advance(days=2)
    assert fired(feed("login.success", country=None, ip="10.9.9.9"), "auth.new-country") == []
    (vpn,) = fired(feed("login.success", country=None, ip="172.16.0.4"), "auth.new-country")
    assert (vpn.facts["value"], vpn.facts["known"]) == ("VPN", ["hospital LAN"])
    clock.advance(hours=2)  # past the rule's suppression period
    (unknown,) = fired(feed("login.success", country=None, ip="not-an-ip"), "auth.new-country")
    assert unknown.facts["value"] == "unknown"
    clock.advance(hours=2)
    (given,) = fired(feed("login.success", country="FR", ip="10.1.2.3"), "auth.new-country")
    assert given.facts["value"] == "FR"


def _run(engine: Engine, events: list[AuditEvent]) -> list[Alert]:
    return [a for e in events for a in engine.process(e)]


def _attack(feed: Feed) -> list[AuditEvent]:
    """History, then a stuffing -> success -> new device -> export attack, as events."""
    feed("login.success")
    feed.clock.advance(days=3)
    feed.many(12, "login.failure", every=20)
    feed("login.success", device="evil-1", country="RU")
    feed.clock.advance(minutes=3)
    feed.spaced([{"study": f"1.2.{i}", "device": "evil-1"} for i in range(20)], "study.export", every=30)
    return feed.sent


def test_snapshot_and_restore_continue_exactly(default_rules: tuple[Rule, ...], clock: FakeClock) -> None:
    events = _attack(Feed(Engine(default_rules), clock))
    straight = _run(Engine(default_rules), events)
    assert {a.rule_id for a in straight} >= {"auth.success-after-failures", "data.export-spike", "auth.new-device"}
    for cut in (5, 14, 20, len(events) - 3):
        first = Engine(default_rules)
        before = _run(first, events[:cut])
        checkpoint = json.loads(json.dumps(first.snapshot()))
        second = Engine(default_rules)
        assert second.restore(checkpoint) == []
        after = _run(second, events[cut - 3 :])  # the tail re-delivers a few events: they are skipped
        assert before + after == straight
        assert second.stats().duplicates == 3


def test_reprocessing_after_a_lost_checkpoint_gives_the_same_alert_keys(
    default_rules: tuple[Rule, ...], clock: FakeClock
) -> None:
    """A crash after alerts went out but before the checkpoint: the redo yields equal keys."""
    events = _attack(Feed(Engine(default_rules), clock))
    first = Engine(default_rules)
    _run(first, events[:10])
    checkpoint = json.loads(json.dumps(first.snapshot()))
    emitted = _run(first, events[10:])  # ... then the process dies before the next checkpoint
    second = Engine(default_rules)
    second.restore(checkpoint)
    redone = _run(second, events[10:])
    assert [a.key for a in redone] == [a.key for a in emitted]
    assert all(a.trigger_seq == a.evidence[-1] for a in redone)


def test_a_changed_rule_starts_from_empty_state(tmp_path: Path, clock: FakeClock) -> None:
    base = tmp_path / "r.yaml"
    base.write_text(
        "rules:\n  - id: t.fail\n    title: t\n    kind: threshold\n    events: login.failure\n"
        "    group_by: [actor.principal_id]\n    window: 10m\n    more_than: 3\n"
    )
    feed = Feed(Engine(parse_rule_file(base).rules), clock)
    feed.many(3, "login.failure")
    snapshot: dict[str, Any] = feed.engine.snapshot()
    base.write_text(base.read_text().replace("more_than: 3", "more_than: 2"))
    changed = Engine(parse_rule_file(base).rules)
    assert changed.restore(snapshot) == ["t.fail"]
    assert changed.last_seq == 3


@pytest.mark.parametrize("bad", [{}, {"version": 99}, {"version": 1, "rules": 3}, [1, 2]])
def test_malformed_snapshots_are_refused(default_rules: tuple[Rule, ...], bad: Any) -> None:
    with pytest.raises(SnapshotError):
        Engine(default_rules).restore(bad)


def test_restore_only_into_a_fresh_engine(feed: Feed) -> None:
    feed("login.failure")
    with pytest.raises(SnapshotError, match="fresh engine"):
        feed.engine.restore(feed.engine.snapshot())


def test_time_comes_from_events_not_the_wall_clock() -> None:
    engine = Engine(load_rules())
    clock = FakeClock(datetime(2019, 3, 1, 12, 0, tzinfo=UTC))
    feed = Feed(engine, clock)
    (alert,) = fired(feed.many(9, "login.failure", every=60), "auth.failed-logins-account")
    assert alert.triggered_at == datetime(2019, 3, 1, 12, 8, tzinfo=UTC)
    assert alert.first_event_at == datetime(2019, 3, 1, 12, 0, tzinfo=UTC)
