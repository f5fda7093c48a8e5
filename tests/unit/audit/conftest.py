"""Fixtures for the audit log tests: a signing key, a factory of open logs, and sites whose
log holds sample events (for the CLI tests)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import Engine

from pacsguard.audit import AuditLog, AuditOptions
from pacsguard.clock import FakeClock
from pacsguard.domain.events import Actor, AuditEvent, ObjectRef
from pacsguard.storage import make_engine, migrate

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


@pytest.fixture
def logged_site(make_site: Callable[..., Path], clock: FakeClock) -> Callable[..., Path]:
    """A factory: a scaffolded site with a signing key (``pki/signing-key.pem``) whose
    audit log holds ``fill(n)`` sample events for each ``n`` given, in order, with a
    signed head every ``head_every`` events."""

    def make(*fills: int, head_every: int = AuditOptions().head_every_events) -> Path:
        site = make_site()
        key = Ed25519PrivateKey.generate()
        (site / "pki").mkdir(exist_ok=True)
        pem = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        (site / "pki" / "signing-key.pem").write_bytes(pem)
        engine = make_engine(f"sqlite:///{site / 'pacsguard.db'}")
        migrate(engine)
        try:
            with AuditLog(
                engine, signing_key=key, clock=clock, options=AuditOptions(head_every_events=head_every)
            ) as log:
                for n in fills:
                    fill(log, clock, n)
        finally:
            engine.dispose()
        return site

    return make


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
