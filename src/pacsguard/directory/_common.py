"""What every directory component shares: the database, the zones, the settings, the
event sink and the clock; plus ids, hashing and event building."""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Engine

from pacsguard.clock import Clock, utc
from pacsguard.config import AuthSettings
from pacsguard.domain import Actor, AuditEvent, EventSink, ObjectRef, Outcome, ZoneTree
from pacsguard.errors import InvalidEntry

PRINCIPAL_ID = re.compile(r"^[a-z0-9][a-z0-9_.@-]{0,63}$")


@dataclass(frozen=True)
class Deps:
    """The dependencies of every directory component."""

    engine: Engine
    zones: ZoneTree
    auth: AuthSettings
    events: EventSink
    clock: Clock

    def now(self) -> datetime:
        return utc(self.clock.now())


def event(
    type_: str,
    now: datetime,
    actor: Actor,
    *,
    target: str | None = None,
    outcome: Outcome = Outcome.SUCCESS,
    zone: str | None = None,
    detail: Mapping[str, Any] | None = None,
) -> AuditEvent:
    """Build one directory ``AuditEvent``; ``detail`` holds JSON values only."""
    return AuditEvent(
        type=type_,
        occurred_at=now,
        outcome=outcome,
        actor=actor,
        objects=ObjectRef(target_principal=target, zone=zone),
        detail=dict(detail or {}),
    )


def new_id(prefix: str) -> str:
    """A random public id such as ``a-3f9c0d1e2b4a5968``."""
    return f"{prefix}-{secrets.token_hex(8)}"


def digest(secret: str) -> str:
    """SHA-256 hex of a bearer secret: what sessions and tokens keep at rest."""
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def check_principal_id(principal_id: str) -> str:
    """Raises ``InvalidEntry`` unless the id is a short lower-case name."""
    if not PRINCIPAL_ID.match(principal_id):
        raise InvalidEntry(
            f"bad principal id {principal_id!r}: use 1-64 of a-z 0-9 _ . @ -, starting with a letter or digit"
        )
    return principal_id


def when(value: datetime | None) -> datetime | None:
    """A stored time as aware UTC (SQLite gives naive values back)."""
    return utc(value) if value is not None else None


def iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None
