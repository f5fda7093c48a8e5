"""The ``Alert`` value the engine returns: what fired, about whom, on which evidence.

Alerts are plain frozen values. Storing them, grouping them into incidents, notifying
and containing are done by the components that receive them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from pacsguard.monitor.rules import Response, Severity

__all__ = ["Alert"]


@dataclass(frozen=True, slots=True)
class Alert:
    """One rule fired for one subject.

    ``subject`` is the rule's group-by values as ``field=value`` pairs joined by ``,``
    (e.g. ``actor.principal_id=alice``); alerts with equal subjects concern the same
    party. ``evidence`` holds the sequence numbers of the events that made it fire, in
    order; ``first_event_at`` and ``triggered_at`` are event times, so their difference
    is the detection delay in event time.
    """

    rule_id: str
    title: str
    severity: Severity
    subject: str
    evidence: tuple[int, ...]
    first_event_at: datetime
    triggered_at: datetime
    response: Response = Response.NOTIFY
    actions: tuple[str, ...] = ()
    channels: tuple[str, ...] = ("dashboard",)
    owner: str = "security-officer"
    kind: str = "match"
    escalated_by: str | None = None
    escalated_from: str | None = None
    facts: Mapping[str, Any] = field(default_factory=dict)

    @property
    def subject_fields(self) -> dict[str, str]:
        """The subject as a mapping ``{field: value}``."""
        pairs = (part.split("=", 1) for part in self.subject.split(",") if "=" in part)
        return dict(pairs)

    @property
    def trigger_seq(self) -> int:
        """The sequence number of the event that made the rule fire (the newest evidence)."""
        return max(self.evidence)

    @property
    def key(self) -> str:
        """A stable identity: ``rule/subject/trigger_seq``. Replaying the same events after a
        restart yields the same keys, so storing alerts by key is idempotent."""
        return f"{self.rule_id}/{self.subject}/{self.trigger_seq}"

    @property
    def time_to_alert(self) -> timedelta:
        """Event time from the first evidence event to the event that triggered the alert."""
        return self.triggered_at - self.first_event_at

    def replay_record(self) -> dict[str, Any]:
        """The compact form ``monitor replay --output`` writes (one JSON object per line):
        rule, severity, subject and its user and IP, and the seq and event time of the first
        and of the triggering evidence event."""
        fields = self.subject_fields
        return {
            "rule_id": self.rule_id,
            "severity": self.severity.value,
            "title": self.title,
            "subject": self.subject,
            "user": fields.get("actor.principal_id"),
            "ip": fields.get("actor.ip"),
            "first_seq": self.evidence[0],
            "first_event_at": self.first_event_at.isoformat(),
            "trigger_seq": self.trigger_seq,
            "triggered_at": self.triggered_at.isoformat(),
            "evidence": list(self.evidence),
        }

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready mapping (times as ISO 8601)."""
        return {
            "key": self.key,
            "rule_id": self.rule_id,
            "title": self.title,
            "severity": self.severity.value,
            "subject": self.subject,
            "evidence": list(self.evidence),
            "first_event_at": self.first_event_at.isoformat(),
            "triggered_at": self.triggered_at.isoformat(),
            "response": self.response.value,
            "actions": list(self.actions),
            "channels": list(self.channels),
            "owner": self.owner,
            "kind": self.kind,
            "escalated_by": self.escalated_by,
            "escalated_from": self.escalated_from,
            "facts": dict(self.facts),
        }
