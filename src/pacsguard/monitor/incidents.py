"""Incidents: alerts about one subject grouped, with the response routine as a checklist.

Pure: ``group`` takes the new alerts and the subjects' open incidents and returns the
incidents to write; ``mark`` ticks a checklist step. The routine (contain, preserve
evidence, scope, reset) and the states (open, acknowledged, contained, resolved) follow
the contain-first response practice: contain first, investigate second.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from pacsguard.errors import IncidentConflict, NotFound
from pacsguard.monitor.alerts import Alert
from pacsguard.monitor.rules import Severity

__all__ = [
    "STEPS",
    "Incident",
    "IncidentState",
    "Step",
    "acknowledge",
    "assign",
    "checklist",
    "group",
    "incident_id",
    "mark",
    "resolve",
    "tick",
    "transition",
]

STEPS: dict[str, str] = {
    "contain": "Contain: disable the account or revoke its sessions",
    "preserve": "Preserve evidence: signed audit tree head, evidence sequence range pinned",
    "scope": "Scope: studies and patients the subject touched, shared or exported",
    "reset": "Reset credentials and roles, tighten sharing",
}


class IncidentState(StrEnum):
    """Where an incident stands."""

    OPEN = "open"
    ACKNOWLEDGED = "acknowledged"
    CONTAINED = "contained"
    RESOLVED = "resolved"


@dataclass(frozen=True, slots=True)
class Step:
    """One checklist step: done when ``done_at`` is set, by whom, with a note."""

    name: str
    title: str
    done_at: datetime | None = None
    by: str | None = None
    note: str = ""

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready mapping."""
        done = self.done_at.isoformat() if self.done_at is not None else None
        return {"name": self.name, "title": self.title, "done_at": done, "by": self.by, "note": self.note}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Step:
        """The step a ``to_json`` mapping describes."""
        done = data.get("done_at")
        return cls(
            data["name"], data["title"], datetime.fromisoformat(done) if done else None, data.get("by"), data["note"]
        )


def checklist() -> tuple[Step, ...]:
    """The response routine, nothing done yet."""
    return tuple(Step(name, title) for name, title in STEPS.items())


@dataclass(frozen=True, slots=True)
class Incident:
    """Alerts about one subject, the response checklist and the response times."""

    id: str
    subject: str
    state: IncidentState
    severity: Severity
    owner: str
    opened_at: datetime
    first_event_at: datetime
    first_alert_at: datetime
    evidence_from: int
    evidence_to: int
    checklist: tuple[Step, ...]
    acknowledged_at: datetime | None = None
    contained_at: datetime | None = None
    resolved_at: datetime | None = None
    scope: Mapping[str, Any] | None = None
    head: Mapping[str, Any] | None = None

    @property
    def time_to_alert(self) -> timedelta:
        """From the first evidence event to the first alert being stored."""
        return self.first_alert_at - self.first_event_at

    @property
    def time_to_contain(self) -> timedelta | None:
        """From the first alert to containment, once contained."""
        return None if self.contained_at is None else self.contained_at - self.first_alert_at

    def step(self, name: str) -> Step:
        """The checklist step ``name``; raises ``KeyError``."""
        for step in self.checklist:
            if step.name == name:
                return step
        raise KeyError(name)


def incident_id(first_alert_key: str) -> str:
    """A stable id derived from the alert that opened the incident, so a redo after a crash
    opens the same incident rather than a second one."""
    return "inc-" + hashlib.sha256(first_alert_key.encode()).hexdigest()[:16]


def group(
    alerts: Iterable[tuple[Alert, datetime]], open_incidents: Mapping[str, Incident]
) -> tuple[dict[str, Incident], dict[str, str]]:
    """Group ``(alert, stored_at)`` pairs by subject into incidents.

    An alert joins its subject's open incident (not resolved) or opens a new one.
    Returns the incidents created or changed by id, and each alert key's incident id.
    """
    by_subject = dict(open_incidents)
    changed: dict[str, Incident] = {}
    joined: dict[str, str] = {}
    for alert, stored_at in alerts:
        current = by_subject.get(alert.subject)
        incident = _open(alert, stored_at) if current is None else _join(current, alert)
        by_subject[alert.subject] = changed[incident.id] = incident
        joined[alert.key] = incident.id
    return changed, joined


def _open(alert: Alert, stored_at: datetime) -> Incident:
    return Incident(
        id=incident_id(alert.key),
        subject=alert.subject,
        state=IncidentState.OPEN,
        severity=alert.severity,
        owner=alert.owner,
        opened_at=stored_at,
        first_event_at=alert.first_event_at,
        first_alert_at=stored_at,
        evidence_from=min(alert.evidence),
        evidence_to=max(alert.evidence),
        checklist=checklist(),
    )


def _join(incident: Incident, alert: Alert) -> Incident:
    return replace(
        incident,
        severity=max(incident.severity, alert.severity, key=lambda s: s.rank),
        first_event_at=min(incident.first_event_at, alert.first_event_at),
        evidence_from=min(incident.evidence_from, *alert.evidence),
        evidence_to=max(incident.evidence_to, *alert.evidence),
    )


def mark(incident: Incident, name: str, at: datetime, by: str, note: str = "") -> Incident:
    """Tick step ``name`` (first tick wins: a done step keeps its time); contain sets the
    state to contained. Raises ``KeyError`` for an unknown step."""
    incident.step(name)
    steps = tuple(
        replace(s, done_at=at, by=by, note=note) if s.name == name and s.done_at is None else s
        for s in incident.checklist
    )
    changed = replace(incident, checklist=steps)
    if name == "contain" and incident.contained_at is None:
        changed = replace(changed, contained_at=at, state=_later(incident.state, IncidentState.CONTAINED))
    return changed


def _later(current: IncidentState, new: IncidentState) -> IncidentState:
    order = list(IncidentState)
    return new if order.index(new) > order.index(current) else current


def acknowledge(incident: Incident, owner: str, at: datetime) -> Incident:
    """An officer takes the incident: it gets an owner and, if still open, is acknowledged.

    Raises ``ValueError`` for a resolved incident."""
    if incident.state is IncidentState.RESOLVED:
        raise ValueError(f"incident {incident.id} is resolved already")
    return replace(
        incident,
        owner=owner,
        acknowledged_at=incident.acknowledged_at or at,
        state=_later(incident.state, IncidentState.ACKNOWLEDGED),
    )


def resolve(incident: Incident, by: str, at: datetime, note: str = "") -> Incident:
    """Close the incident; the reset step is ticked with ``note`` if nobody ticked it.

    Raises ``ValueError`` while the incident is neither acknowledged nor contained (someone
    must have looked at it)."""
    if incident.state is IncidentState.OPEN:
        raise ValueError(f"incident {incident.id} is still open: acknowledge or contain it first")
    done = mark(incident, "reset", at, by, note)
    return replace(done, state=IncidentState.RESOLVED, resolved_at=incident.resolved_at or at)


def transition(incident: Incident, to: IncidentState, by: str, at: datetime, note: str = "") -> Incident:
    """An officer moves the incident forward: open → acknowledged → contained → resolved
    (skipping is allowed, except open → resolved: someone must have looked). Acknowledging
    makes ``by`` the owner while a role, not a person, owns it; contained ticks the contain
    step; resolved ticks the reset step. Raises ``IncidentConflict`` for any other move."""
    order = list(IncidentState)
    if incident.state is IncidentState.RESOLVED or order.index(to) <= order.index(incident.state):
        raise IncidentConflict(f"incident {incident.id} is {incident.state.value}: it cannot become {to.value}")
    if to is IncidentState.ACKNOWLEDGED:
        owner = by if incident.owner == _ROLE_OWNER else incident.owner
        return acknowledge(incident, owner, at)
    if to is IncidentState.CONTAINED:
        contained = mark(incident, "contain", at, by, note or "marked contained")
        return replace(contained, state=IncidentState.CONTAINED, contained_at=incident.contained_at or at)
    try:
        return resolve(incident, by, at, note)
    except ValueError as exc:
        raise IncidentConflict(str(exc)) from exc


_ROLE_OWNER = "security-officer"  # rules name a role by default: no person has taken it yet


def tick(incident: Incident, name: str, at: datetime, by: str, note: str = "") -> Incident:
    """Mark checklist step ``name`` done by ``by``. Raises ``NotFound`` (no such step) or
    ``IncidentConflict`` (the step is done already, or the incident is resolved)."""
    try:
        step = incident.step(name)
    except KeyError:
        raise NotFound(f"no checklist step {name!r} (steps: {', '.join(STEPS)})") from None
    if incident.state is IncidentState.RESOLVED:
        raise IncidentConflict(f"incident {incident.id} is resolved: its checklist is closed")
    if step.done_at is not None:
        raise IncidentConflict(f"step {name!r} was done at {step.done_at.isoformat()} by {step.by}")
    return mark(incident, name, at, by, note)


def assign(incident: Incident, owner: str) -> Incident:
    """The incident owned by ``owner``; raises ``IncidentConflict`` once it is resolved."""
    if incident.state is IncidentState.RESOLVED:
        raise IncidentConflict(f"incident {incident.id} is resolved: its owner stays {incident.owner}")
    return replace(incident, owner=owner)
