"""The streaming rule engine: ``AuditEvent``s in, in sequence order; ``Alert`` values out.

Time comes only from the events (``occurred_at``), so the live tail of the audit log and
``pacsguard monitor replay`` run exactly this code. The engine remembers the last
sequence number it consumed and skips anything at or below it, and ``snapshot()`` /
``restore()`` move its whole state to and from JSON, so a durable cursor stored with a
snapshot resumes without missing or double-processing an event. The live loop::

    rules = load_rules(site / "rules")
    engine = Engine(rules, geo=site_geo(rules.networks, rules.geoip))
    if checkpoint is not None:
        engine.restore(checkpoint)          # its "last_seq" is the cursor
    for event in log.events_after(engine.last_seq or 0):
        for alert in engine.process(event):
            store(alert)                    # idempotent by alert.key: a redo yields equal keys
        if time_to_checkpoint():
            save(engine.snapshot())
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from pacsguard.domain.events import AuditEvent
from pacsguard.errors import SnapshotError
from pacsguard.monitor.alerts import Alert
from pacsguard.monitor.compile import subject_of, timestamp
from pacsguard.monitor.detectors import Detector, Fire, Handler, Limits, build_detector
from pacsguard.monitor.loader import RuleSet
from pacsguard.monitor.rules import EscalateRule, Rule, Severity

if TYPE_CHECKING:  # the engine needs only the protocol; the MaxMind reader stays at the edge
    from pacsguard.monitor.geo import GeoLookup

__all__ = ["Engine", "EngineStats"]

SNAPSHOT_VERSION = 1
_SEP = "\x1e"
_SKIPPED = (AttributeError, KeyError, TypeError, ValueError, OverflowError)


@dataclass
class EngineStats:
    """Counters: events consumed and skipped, alerts raised, suppressed and escalated.

    ``missing`` and ``evictions`` are per rule id: events skipped for lacking a field the
    rule needs, and keys dropped to keep memory bounded.
    """

    processed: int = 0
    duplicates: int = 0
    unsequenced: int = 0
    malformed: int = 0
    alerts: int = 0
    suppressed: int = 0
    escalated: int = 0
    missing: dict[str, int] = field(default_factory=dict)
    evictions: dict[str, int] = field(default_factory=dict)


class Engine:
    """Evaluates compiled rules over events; pure: no clock, no I/O.

    Raises ``ValueError`` if ``rules`` holds two rules with one id.
    """

    def __init__(
        self, rules: RuleSet | Sequence[Rule], *, geo: GeoLookup | None = None, limits: Limits | None = None
    ) -> None:
        self.rules: tuple[Rule, ...] = tuple(rules.rules if isinstance(rules, RuleSet) else rules)
        ids = [r.id for r in self.rules]
        if len(set(ids)) != len(ids):
            raise ValueError("two rules share an id")
        self.limits = limits or Limits()
        self.geo = geo
        self.last_seq: int | None = None
        self._stats = EngineStats()
        self._by_id = {r.id: r for r in self.rules}
        self._detectors: dict[str, Detector] = {}
        self._dispatch: dict[str, list[tuple[Rule, Handler]]] = {}
        self._escalations: dict[str, list[EscalateRule]] = {}
        self._geo_types: frozenset[str] = frozenset()
        self._recent: dict[str, list[Any]] = {}
        self._suppress: dict[str, float] = {}
        self._compile()

    def _compile(self) -> None:
        geo_types: set[str] = set()
        for rule in self.rules:
            if isinstance(rule, EscalateRule):
                for target in rule.rules:
                    self._escalations.setdefault(target, []).append(rule)
                continue
            detector = build_detector(rule, self.limits)
            if detector is None:
                continue
            self._detectors[rule.id] = detector
            for event_type, handler in detector.handlers().items():
                self._dispatch.setdefault(event_type, []).append((rule, handler))
                if _uses_country(rule):
                    geo_types.add(event_type)
        self._geo_types = frozenset(geo_types)
        self._watched = frozenset(after for rules in self._escalations.values() for r in rules for after in r.after)

    @property
    def event_types(self) -> frozenset[str]:
        """The event types some rule looks at."""
        return frozenset(self._dispatch)

    def process(self, event: AuditEvent) -> list[Alert]:
        """Consume one event (``seq`` set, in order); returns the alerts it raises, possibly none.

        Never raises for bad events: an event without ``seq``, already consumed, or
        lacking what a rule needs is counted in ``stats()`` and skipped.
        """
        seq = event.seq
        if seq is None:
            self._stats.unsequenced += 1
            return []
        if self.last_seq is not None and seq <= self.last_seq:
            self._stats.duplicates += 1
            return []
        self.last_seq = seq
        self._stats.processed += 1
        handlers = self._dispatch.get(event.type)
        if handlers is None:
            return []
        try:
            t = timestamp(event.occurred_at)
            if event.type in self._geo_types:
                event = self._enrich(event)
        except _SKIPPED:
            self._stats.malformed += 1
            return []
        fired: list[tuple[Rule, Fire]] = []
        for rule, handle in handlers:
            try:
                fire = handle(event, t, seq)
            except _SKIPPED:
                self._stats.malformed += 1
                continue
            if fire is not None:
                fired.append((rule, fire))
        if not fired:
            return []
        return self._finish(fired, event, t)

    def run(self, events: Iterable[AuditEvent]) -> Iterator[Alert]:
        """Process ``events`` in order, yielding alerts as they fire."""
        for event in events:
            yield from self.process(event)

    def _enrich(self, event: AuditEvent) -> AuditEvent:
        actor = event.actor
        if self.geo is None or actor.country is not None or not actor.ip:
            return event
        return replace(event, actor=replace(actor, country=self.geo.country(actor.ip)))

    def _finish(self, fired: list[tuple[Rule, Fire]], event: AuditEvent, t: float) -> list[Alert]:
        triggered = datetime.fromtimestamp(t, UTC)
        alerts = [self._alert(rule, fire, triggered) for rule, fire in fired]
        for alert in alerts:
            if alert.rule_id in self._watched:
                self._remember(_SEP.join((alert.rule_id, alert.subject)), [t, alert])
        out: list[Alert] = []
        for raised in alerts:
            alert = self._escalate(raised, t)
            if self._suppressed(alert, t):
                self._stats.suppressed += 1
                continue
            out.append(alert)
        self._stats.alerts += len(out)
        return out

    def _alert(self, rule: Rule, fire: Fire, triggered: datetime) -> Alert:
        return Alert(
            rule_id=rule.id,
            title=rule.title,
            severity=rule.severity,
            subject=subject_of(rule.group_by, fire.key),
            evidence=fire.evidence,
            first_event_at=datetime.fromtimestamp(fire.first_t, UTC),
            triggered_at=triggered,
            response=rule.response,
            actions=tuple(rule.actions),
            channels=tuple(rule.channels),
            owner=rule.owner,
            kind=rule.kind,
            facts=fire.facts,
        )

    def _escalate(self, alert: Alert, t: float) -> Alert:
        for esc in self._escalations.get(alert.rule_id, ()):
            for after in esc.after:
                recent = self._recent.get(_SEP.join((after, alert.subject)))
                if recent is None or not 0 <= t - recent[0] <= esc.within.total_seconds():
                    continue
                self._stats.escalated += 1
                return _raise(alert, esc, recent[1])
        return alert

    def _suppressed(self, alert: Alert, t: float) -> bool:
        rule = self._by_id[alert.escalated_by or alert.rule_id]
        period = rule.suppress.total_seconds()
        if period <= 0:
            return False
        key = _SEP.join((alert.rule_id, alert.subject, alert.severity.value))
        last = self._suppress.pop(key, None)
        if last is not None and 0 <= t - last < period:
            self._suppress[key] = last
            return True
        self._suppress[key] = t
        _trim(self._suppress, self.limits.max_keys)
        return False

    def _remember(self, key: str, value: list[Any]) -> None:
        self._recent.pop(key, None)
        self._recent[key] = value
        _trim(self._recent, self.limits.max_keys)

    def stats(self) -> EngineStats:
        """A copy of the counters, with per-rule missing-field and eviction counts."""
        return replace(
            self._stats,
            missing={rid: d.missing for rid, d in self._detectors.items() if d.missing},
            evictions={rid: d.evictions for rid, d in self._detectors.items() if d.evictions},
        )

    def snapshot(self) -> dict[str, Any]:
        """The whole state as JSON-able data; store it with the cursor (``last_seq``)."""
        return {
            "version": SNAPSHOT_VERSION,
            "last_seq": self.last_seq,
            "rules": {rid: {"fp": _fingerprint(d.rule), "state": d.snapshot()} for rid, d in self._detectors.items()},
            "recent": [[k, v[0], v[1].to_json()] for k, v in self._recent.items()],
            "suppress": [[k, v] for k, v in self._suppress.items()],
            "stats": {k: v for k, v in vars(self._stats).items() if isinstance(v, int)},
        }

    def restore(self, snapshot: dict[str, Any]) -> list[str]:
        """Load a ``snapshot()`` into a fresh engine; returns ids of rules whose state was reset
        because the rule changed since. Raises ``SnapshotError`` if it is malformed."""
        if self.last_seq is not None or self._stats.processed:
            raise SnapshotError("restore into a fresh engine, before it processes events")
        if not isinstance(snapshot, dict) or snapshot.get("version") != SNAPSHOT_VERSION:
            raise SnapshotError(f"not a monitor snapshot of version {SNAPSHOT_VERSION}")
        try:
            return self._load(snapshot)
        except (*_SKIPPED, IndexError) as exc:
            raise SnapshotError(f"malformed monitor snapshot: {exc!r}") from exc

    def _load(self, snapshot: dict[str, Any]) -> list[str]:
        reset: list[str] = []
        saved = snapshot["rules"]
        for rid, detector in self._detectors.items():
            entry = saved.get(rid)
            if entry is None or entry["fp"] != _fingerprint(detector.rule):
                reset.append(rid)
                continue
            detector.restore(entry["state"])
        self.last_seq = snapshot["last_seq"]
        self._recent = {k: [float(t), _alert_from_json(a)] for k, t, a in snapshot["recent"]}
        self._suppress = {k: float(t) for k, t in snapshot["suppress"]}
        for name, value in snapshot["stats"].items():
            if hasattr(self._stats, name):
                setattr(self._stats, name, int(value))
        return reset


def _raise(alert: Alert, esc: EscalateRule, earlier: Alert) -> Alert:
    severity = max(alert.severity, esc.severity, key=lambda s: s.rank)
    response = max(alert.response, esc.response, key=lambda r: r.rank)
    return replace(
        alert,
        severity=severity,
        response=response,
        actions=tuple(dict.fromkeys((*alert.actions, *esc.actions))),
        channels=tuple(dict.fromkeys((*alert.channels, *esc.channels))),
        evidence=tuple(sorted({*earlier.evidence, *alert.evidence})),
        first_event_at=min(alert.first_event_at, earlier.first_event_at),
        escalated_by=esc.id,
        escalated_from=earlier.rule_id,
    )


def _alert_from_json(data: dict[str, Any]) -> Alert:
    return Alert(
        rule_id=data["rule_id"],
        title=data["title"],
        severity=Severity(data["severity"]),
        subject=data["subject"],
        evidence=tuple(data["evidence"]),
        first_event_at=datetime.fromisoformat(data["first_event_at"]),
        triggered_at=datetime.fromisoformat(data["triggered_at"]),
        kind=data["kind"],
    )


def _trim(mapping: dict[str, Any], cap: int) -> None:
    while len(mapping) > cap:
        del mapping[next(iter(mapping))]


def _fingerprint(rule: Rule) -> str:
    return hashlib.sha256(rule.model_dump_json().encode()).hexdigest()[:16]


def _uses_country(rule: Rule) -> bool:
    text = rule.model_dump_json()
    return "actor.country" in text
