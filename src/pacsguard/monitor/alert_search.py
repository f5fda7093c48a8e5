"""Finding stored alerts: filters, newest first, and a stable paging cursor.

The order is ``trigger_seq`` descending, then ``key``: both are fixed when an alert is
stored, so a cursor (the last row's pair, opaque to the client) names the same place
however many alerts arrive meanwhile; new alerts appear on the first page, never twice.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, or_

from pacsguard.errors import IncidentError
from pacsguard.monitor.rules import Severity
from pacsguard.storage.monitor_tables import monitor_alerts as ta

__all__ = ["ALERT_STATES", "AlertFilter", "after_condition", "decode_cursor", "encode_cursor"]

ALERT_STATES = ("open", "acknowledged", "historical")
"""``open``: live, nobody acknowledged it; ``acknowledged``: an officer did;
``historical``: older than the live horizon when processed (never notified, never contained)."""


@dataclass(frozen=True, slots=True)
class AlertFilter:
    """What to find: every field optional. ``subject`` with ``=`` is a whole subject
    (``actor.principal_id=alice``); without, any subject with a field of that value.
    ``since``/``until`` bound the triggering event's time (``since`` inclusive)."""

    state: str | None = None
    severity: Severity | None = None
    rule: str | None = None
    subject: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    incident: str | None = None

    def conditions(self) -> list[ColumnElement[bool]]:
        """The SQL conditions; raises ``IncidentError`` for an unknown state."""
        found: list[ColumnElement[bool]] = []
        if self.state is not None:
            found.append(_state(self.state))
        if self.severity is not None:
            found.append(ta.c.severity == self.severity.value)
        if self.rule is not None:
            found.append(ta.c.rule_id == self.rule)
        if self.subject is not None:
            found.append(_subject(self.subject))
        if self.since is not None:
            found.append(ta.c.triggered_at >= self.since)
        if self.until is not None:
            found.append(ta.c.triggered_at < self.until)
        if self.incident is not None:
            found.append(ta.c.incident_id == self.incident)
        return found

    def describe(self) -> dict[str, str]:
        """The filter as JSON-ready strings, for the ``audit.log.used`` record."""
        out: dict[str, str] = {}
        for name in ("state", "severity", "rule", "subject", "since", "until", "incident"):
            value = getattr(self, name)
            if value is not None:
                out[name] = value.isoformat() if isinstance(value, datetime) else str(value)
        return out


def _state(state: str) -> ColumnElement[bool]:
    if state == "open":
        return and_(ta.c.live.is_(True), ta.c.acknowledged_at.is_(None))
    if state == "acknowledged":
        return ta.c.acknowledged_at.is_not(None)
    if state == "historical":
        return and_(ta.c.live.is_(False), ta.c.acknowledged_at.is_(None))
    raise IncidentError(f"no alert state {state!r} (known: {', '.join(ALERT_STATES)})")


def _subject(value: str) -> ColumnElement[bool]:
    if "=" in value:
        return ta.c.subject == value
    escaped = value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return or_(
        ta.c.subject.like(f"%={escaped}", escape="\\"),
        ta.c.subject.like(f"%={escaped},%", escape="\\"),
    )


def after_condition(cursor: tuple[int, str]) -> ColumnElement[bool]:
    """Rows after ``cursor`` in the newest-first order."""
    seq, key = cursor
    return or_(ta.c.trigger_seq < seq, and_(ta.c.trigger_seq == seq, ta.c.key > key))


def encode_cursor(trigger_seq: int, key: str) -> str:
    """The opaque cursor naming the place after this row."""
    raw = json.dumps([trigger_seq, key], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[int, str]:
    """The row a cursor names; raises ``IncidentError`` for anything ``encode_cursor``
    did not make."""
    try:
        data: Any = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (ValueError, binascii.Error, UnicodeDecodeError):
        data = None
    if not (isinstance(data, list) and len(data) == 2 and isinstance(data[0], int) and isinstance(data[1], str)):
        raise IncidentError("the paging cursor is not valid: use the 'next' value of the previous page")
    return data[0], data[1]
