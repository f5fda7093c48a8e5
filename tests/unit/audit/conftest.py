"""Fixtures for the audit log tests: a signing key and a factory of open logs."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import Engine

from pacsguard.audit import AuditLog, AuditOptions
from pacsguard.clock import FakeClock
from pacsguard.domain.events import Actor, AuditEvent, ObjectRef

OpenLog = Callable[..., AuditLog]


@pytest.fixture
def signing_key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


@pytest.fixture
def open_log(engine: Engine, signing_key: Ed25519PrivateKey, clock: FakeClock) -> Iterator[OpenLog]:
    """A factory: an ``AuditLog`` on the test engine (closed at the end)."""
    opened: list[AuditLog] = []

    def open_(**kwargs: Any) -> AuditLog:
        kwargs.setdefault("signing_key", signing_key)
        kwargs.setdefault("clock", clock)
        kwargs.setdefault("options", AuditOptions(head_every_events=5, head_every_seconds=3600))
        log = AuditLog(engine, **kwargs)
        opened.append(log)
        return log

    yield open_
    for log in opened:
        log.close()


def sample(i: int, clock: FakeClock, **kwargs: Any) -> AuditEvent:
    """Event number ``i``: alternating principals, patients and types."""
    base: dict[str, Any] = {
        "type": "study.read" if i % 3 else "study.query",
        "occurred_at": clock.now() + timedelta(seconds=i),
        "actor": Actor(f"user{i % 4}", ("radiologist",), zone="north", ip=f"10.0.0.{i % 5}"),
        "objects": ObjectRef(patient_id=f"P{i % 7}", study_uid=f"1.2.840.{i}"),
        "detail": {"i": i},
    }
    return AuditEvent(**{**base, **kwargs})


def fill(log: AuditLog, clock: FakeClock, n: int) -> list[AuditEvent]:
    """Append ``n`` sample events and wait until all are durable."""
    receipts = [log.append(sample(i, clock)) for i in range(n)]
    return [r.result(timeout=60) for r in receipts]
