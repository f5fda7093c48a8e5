"""The one event type, and the ``emit`` seam every component reports through.

Every step of a request emits one ``AuditEvent``: authentication, directory changes,
decisions, data movement, containment. The audit log stores them (assigning ``seq``) and
the monitor reads the same events back by sequence number. Until a component is wired to
the audit log it is given an ``EventSink``; the log itself is one.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Protocol

__all__ = [
    "Actor",
    "AuditEvent",
    "DecisionRef",
    "EventBus",
    "EventSink",
    "ObjectRef",
    "Outcome",
    "RecordingSink",
]

JsonValue = str | int | float | bool | None | list["JsonValue"] | dict[str, "JsonValue"]


class Outcome(StrEnum):
    """Event outcome; maps onto DICOM PS3.15 EventOutcomeIndicator 0/4/8/12."""

    SUCCESS = "success"
    DENIED = "denied"  # a policy said no (minor failure, 4)
    FAILURE = "failure"  # bad credentials, bad input (minor failure, 4)
    ERROR = "error"  # something broke (serious failure, 8)


@dataclass(frozen=True, slots=True)
class Actor:
    """Who acted, from where, and how strongly authenticated."""

    principal_id: str | None = None
    roles: tuple[str, ...] = ()
    zone: str | None = None
    session_id: str | None = None
    ip: str | None = None
    device_id: str | None = None
    user_agent: str | None = None
    country: str | None = None
    ae_title: str | None = None
    auth_strength: int | None = None


@dataclass(frozen=True, slots=True)
class ObjectRef:
    """What the event is about: a patient, studies, a principal acted upon, a share link."""

    patient_id: str | None = None
    study_uid: str | None = None
    series_uid: str | None = None
    instance_uid: str | None = None
    count: int | None = None
    bytes: int | None = None
    share_id: str | None = None
    target_principal: str | None = None
    zone: str | None = None


@dataclass(frozen=True, slots=True)
class DecisionRef:
    """The access decision behind the event, when there was one."""

    effect: str
    rule_ids: tuple[str, ...] = ()
    agreement: str | None = None
    delegation: tuple[str, ...] = ()
    break_glass_reason: str | None = None


@dataclass(frozen=True, slots=True)
class AuditEvent:
    """One thing that happened. ``seq`` is ``None`` until the audit log assigns it."""

    type: str
    occurred_at: datetime
    outcome: Outcome = Outcome.SUCCESS
    actor: Actor = field(default_factory=Actor)
    objects: ObjectRef = field(default_factory=ObjectRef)
    decision: DecisionRef | None = None
    detail: Mapping[str, JsonValue] = field(default_factory=dict)
    seq: int | None = None


class EventSink(Protocol):
    """Anything that takes events: the audit log, a test recorder, a fan-out bus."""

    def emit(self, event: AuditEvent) -> None: ...


class RecordingSink:
    """Keeps events in memory, in order; for tests, replays and the demo."""

    def __init__(self) -> None:
        self.events: list[AuditEvent] = []

    def emit(self, event: AuditEvent) -> None:
        self.events.append(event)

    def types(self) -> list[str]:
        return [e.type for e in self.events]

    def of_type(self, event_type: str) -> list[AuditEvent]:
        return [e for e in self.events if e.type == event_type]


class EventBus:
    """Fans one event out to every subscriber, in subscription order.

    A subscriber that raises stops the fan-out and the error reaches the emitter: an
    event the audit log could not take must fail the action that caused it.
    """

    def __init__(self, *subscribers: EventSink | Callable[[AuditEvent], None]) -> None:
        self._subscribers: list[Callable[[AuditEvent], None]] = []
        for s in subscribers:
            self.subscribe(s)

    def subscribe(self, subscriber: EventSink | Callable[[AuditEvent], None]) -> None:
        self._subscribers.append(subscriber.emit if hasattr(subscriber, "emit") else subscriber)

    def emit(self, event: AuditEvent) -> None:
        for deliver in self._subscribers:
            deliver(event)
