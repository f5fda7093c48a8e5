"""Where the engine's events come from: an ``EventSource`` yields ``AuditEvent``s in seq order.

``JsonlEventSource`` reads a JSON Lines file (one event per line, as written by
``event_to_json``); the audit-log tail is another source of the same shape. Lines that
are not events are counted and skipped, with the first few reported by line number.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

from pacsguard.clock import utc
from pacsguard.domain.events import Actor, AuditEvent, DecisionRef, ObjectRef, Outcome
from pacsguard.errors import MonitorError

__all__ = ["EventSource", "JsonlEventSource", "event_from_json", "event_to_json"]


class EventSource(Protocol):
    """Yields events with ``seq`` set, in ascending ``seq`` order."""

    def events(self) -> Iterator[AuditEvent]: ...


def event_to_json(event: AuditEvent) -> dict[str, Any]:
    """An event as a JSON-ready mapping (``occurred_at`` in ISO 8601)."""
    data = asdict(event)
    data["occurred_at"] = event.occurred_at.isoformat()
    data["outcome"] = event.outcome.value
    data["actor"]["roles"] = list(event.actor.roles)
    data["detail"] = dict(event.detail)
    if event.decision is not None:
        data["decision"]["rule_ids"] = list(event.decision.rule_ids)
        data["decision"]["delegation"] = list(event.decision.delegation)
    return data


def event_from_json(data: Mapping[str, Any]) -> AuditEvent:
    """The event a JSON mapping describes; raises ``ValueError``/``TypeError``/``KeyError`` if malformed."""
    actor = dict(data.get("actor") or {})
    actor["roles"] = tuple(actor.get("roles") or ())
    decision = data.get("decision")
    if decision is not None:
        decision = dict(decision)
        decision["rule_ids"] = tuple(decision.get("rule_ids") or ())
        decision["delegation"] = tuple(decision.get("delegation") or ())
    detail = data.get("detail") or {}
    if not isinstance(detail, dict):
        raise TypeError("detail must be an object")
    seq = data.get("seq")
    return AuditEvent(
        type=str(data["type"]),
        occurred_at=utc(datetime.fromisoformat(str(data["occurred_at"]))),
        outcome=Outcome(data.get("outcome", "success")),
        actor=Actor(**actor),
        objects=ObjectRef(**(data.get("objects") or {})),
        decision=DecisionRef(**decision) if decision is not None else None,
        detail=detail,
        seq=int(seq) if seq is not None else None,
    )


@dataclass
class JsonlEventSource:
    """Events from a JSON Lines file, optionally limited to ``since <= occurred_at < until``.

    An event without ``seq`` gets its line number. Raises ``MonitorError`` if the file
    cannot be read.
    """

    path: Path
    since: datetime | None = None
    until: datetime | None = None
    skipped: int = 0
    problems: list[str] = field(default_factory=list)

    def events(self) -> Iterator[AuditEvent]:
        try:
            handle = self.path.open(encoding="utf-8")
        except OSError as exc:
            raise MonitorError(f"{self.path}: cannot read events: {exc.strerror or exc}") from exc
        with handle:
            for number, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                event = self._parse(number, line)
                if event is None or not self._in_range(event):
                    continue
                yield event

    def _parse(self, number: int, line: str) -> AuditEvent | None:
        try:
            event = event_from_json(json.loads(line))
        except (ValueError, TypeError, KeyError) as exc:
            self.skipped += 1
            if len(self.problems) < 10:
                self.problems.append(f"{self.path}:{number}: not an event: {exc}")
            return None
        if event.seq is None:
            event = replace(event, seq=number)
        return event

    def _in_range(self, event: AuditEvent) -> bool:
        if self.since is not None and event.occurred_at < utc(self.since):
            return False
        return self.until is None or event.occurred_at < utc(self.until)
