"""Conditions (``where``) and the less used rule options, on real events."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from pacsguard.clock import FakeClock
from pacsguard.domain.events import Actor, AuditEvent, DecisionRef, Outcome
from pacsguard.monitor import Engine, parse_rule_file
from pacsguard.monitor.compile import condition
from tests.unit.monitor.conftest import Feed, fired

EVENT = AuditEvent(
    type="study.export",
    occurred_at=FakeClock().now(),
    outcome=Outcome.DENIED,
    actor=Actor(principal_id="alice", roles=("radiologist", "teacher"), ip="10.0.0.5"),
    decision=DecisionRef("deny", rule_ids=("r7",)),
    detail={"count": 40, "download": True, "reason": "teaching"},
    seq=1,
)


@pytest.mark.parametrize(
    ("path", "test", "expected"),
    [
        ("outcome", "denied", True),
        ("outcome", {"ne": "success"}, True),
        ("actor.principal_id", {"in": ["bob", "alice"]}, True),
        ("actor.principal_id", {"not_in": ["alice"]}, False),
        ("actor.roles", {"contains": "teacher"}, True),
        ("actor.roles", {"not_contains": "admin"}, True),
        ("detail.count", {"gt": 39}, True),
        ("detail.count", {"gte": 41}, False),
        ("detail.count", {"lt": 41}, True),
        ("detail.count", {"lte": 39}, False),
        ("detail.reason", {"gt": 3}, False),  # not a number: never greater
        ("detail.download", True, True),
        ("detail.missing", {"exists": False}, True),
        ("actor.device_id", {"exists": True}, False),
        ("decision.effect", "deny", True),
        ("decision.rule_ids", {"contains": "r7"}, True),
    ],
)
def test_conditions(path: str, test: Any, expected: bool) -> None:
    assert condition(path, test)(EVENT) is expected


def test_decision_fields_of_an_event_without_a_decision_are_missing() -> None:
    plain = AuditEvent(type="x", occurred_at=EVENT.occurred_at)
    assert condition("decision.effect", {"exists": False})(plain)


def _engine(tmp_path: Path, text: str) -> Engine:
    path = tmp_path / "rules.yaml"
    path.write_text(text)
    return Engine(parse_rule_file(path))


def test_a_sequence_can_need_several_of_each_step(tmp_path: Path, clock: FakeClock) -> None:
    engine = _engine(
        tmp_path,
        "rules:\n  - id: s.two-two\n    title: t\n    kind: sequence\n    group_by: [actor.principal_id]\n"
        "    window: 10m\n    first: {events: access.denied, min_count: 2}\n"
        "    then: {events: [{type: study.export, where: {detail.count: {gte: 10}}}], min_count: 2}\n",
    )
    feed = Feed(engine, clock)
    feed("study.export", detail={"count": 50})  # before the first step: ignored
    feed.many(2, "access.denied")
    assert feed("study.export", detail={"count": 50}) == []
    assert feed("study.export", detail={"count": 5}) == []  # does not satisfy the step
    (alert,) = fired(feed("study.export", detail={"count": 50}), "s.two-two")
    assert alert.evidence == (2, 3, 4, 6)


def test_group_by_several_fields_and_a_rule_without_grouping(tmp_path: Path, clock: FakeClock) -> None:
    engine = _engine(
        tmp_path,
        "rules:\n  - id: g.pair\n    title: t\n    kind: threshold\n    events: login.failure\n"
        "    group_by: [actor.principal_id, actor.ip]\n    window: 1h\n    more_than: 1\n"
        "  - id: g.all\n    title: t\n    kind: match\n    events: login.failure\n    where: {actor.ip: 10.9.9.9}\n",
    )
    feed = Feed(engine, clock)
    feed("login.failure", ip="10.0.0.1")
    assert fired(feed("login.failure", ip="10.0.0.2"), "g.pair") == []
    (pair,) = fired(feed("login.failure", ip="10.0.0.2"), "g.pair")
    assert pair.subject == "actor.principal_id=alice,actor.ip=10.0.0.2"
    assert pair.subject_fields == {"actor.principal_id": "alice", "actor.ip": "10.0.0.2"}
    (every,) = fired(feed("login.failure", ip="10.9.9.9"), "g.all")
    assert every.subject == "*"
