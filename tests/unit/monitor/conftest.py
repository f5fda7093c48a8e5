"""A feed that drives the engine with real ``AuditEvent``s, timed by a FakeClock."""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from typing import Any

import pytest

from pacsguard.clock import FakeClock
from pacsguard.domain.events import Actor, AuditEvent, JsonValue, ObjectRef, Outcome
from pacsguard.monitor import Alert, Engine, Rule, load_rules

_OUTCOMES = {"login.failure": Outcome.FAILURE, "access.denied": Outcome.DENIED}


class Feed:
    """Makes events at the clock's time with increasing ``seq`` and passes them to the engine."""

    def __init__(self, engine: Engine, clock: FakeClock) -> None:
        self.engine = engine
        self.clock = clock
        self.seqs = itertools.count(1)
        self.sent: list[AuditEvent] = []

    def event(
        self,
        type: str,
        *,
        user: str | None = "alice",
        ip: str | None = "10.0.0.5",
        device: str | None = "ws-1",
        country: str | None = "DE",
        roles: tuple[str, ...] = ("radiologist",),
        study: str | None = None,
        detail: Mapping[str, JsonValue] | None = None,
    ) -> AuditEvent:
        return AuditEvent(
            type=type,
            occurred_at=self.clock.now(),
            outcome=_OUTCOMES.get(type, Outcome.SUCCESS),
            actor=Actor(principal_id=user, roles=roles, ip=ip, device_id=device, country=country),
            objects=ObjectRef(study_uid=study),
            detail=dict(detail or {}),
            seq=next(self.seqs),
        )

    def __call__(self, type: str, **kwargs: Any) -> list[Alert]:
        event = self.event(type, **kwargs)
        self.sent.append(event)
        return self.engine.process(event)

    def many(self, n: int, type: str, *, every: float = 10, **kwargs: Any) -> list[Alert]:
        """``n`` events ``every`` seconds apart (the clock moves before each but the first)."""
        alerts: list[Alert] = []
        for i in range(n):
            if i:
                self.clock.advance(seconds=every)
            alerts += self(type, **kwargs)
        return alerts

    def spaced(self, variants: list[dict[str, Any]], type: str, *, every: float) -> list[Alert]:
        """One event per mapping of keyword arguments, ``every`` seconds apart."""
        alerts: list[Alert] = []
        for i, kwargs in enumerate(variants):
            if i:
                self.clock.advance(seconds=every)
            alerts += self(type, **kwargs)
        return alerts


def fired(alerts: list[Alert], rule_id: str) -> list[Alert]:
    return [a for a in alerts if a.rule_id == rule_id]


@pytest.fixture
def default_rules() -> tuple[Rule, ...]:
    return load_rules().rules


@pytest.fixture
def feed(default_rules: tuple[Rule, ...], clock: FakeClock) -> Feed:
    return Feed(Engine(default_rules), clock)


def attack_history(rules: tuple[Rule, ...], clock: FakeClock) -> Feed:
    """Three days of one user's events that set off several rules: failed sign-ins, a new
    device, an export spike and a break-glass (the replay and import round-trip tests)."""
    feed = Feed(Engine(rules), clock)
    feed("login.success")
    clock.advance(days=2)
    feed.many(9, "login.failure", every=30)
    feed("login.success", device="evil-1")
    feed.spaced([{"study": f"1.2.{i}"} for i in range(16)], "study.export", every=20)
    clock.advance(days=1)
    feed("break_glass.granted", detail={"reason": "trauma"})
    return feed
