"""One detector per event-driven rule kind; each turns events of its key into ``Fire``s.

A detector exposes ``handlers()``: per event type, a callable ``(event, t, seq)`` that
returns a ``Fire`` or ``None``. The engine dispatches on the event type, so a detector
only sees the events its rule names. State is per key, bounded, and JSON-able.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pacsguard.domain.events import AuditEvent
from pacsguard.monitor.compile import Predicate, all_of, getter, hours_predicate, key_function, selectors_by_type
from pacsguard.monitor.rules import BaselineRule, FirstSeenRule, MatchRule, Rule, SequenceRule, ThresholdRule
from pacsguard.monitor.windows import KeyedState, Window

__all__ = ["Detector", "Fire", "Handler", "Limits", "build_detector"]


@dataclass(frozen=True)
class Limits:
    """Memory bounds: keys per rule, events kept per key, evidence per alert."""

    max_keys: int = 20_000
    max_events_per_key: int = 10_000
    max_evidence: int = 100


@dataclass(slots=True)
class Fire:
    """A rule fired: for which key, on which events, since when."""

    key: str
    evidence: tuple[int, ...]
    first_t: float
    facts: dict[str, Any] = field(default_factory=dict)


Handler = Callable[[AuditEvent, float, int], Fire | None]


class Detector:
    """Base: filtering, grouping and counting of skipped events; subclasses ``observe``."""

    def __init__(self, rule: Rule, limits: Limits) -> None:
        self.rule = rule
        self.limits = limits
        self.missing = 0
        self.key = key_function(rule.group_by)
        self.when = hours_predicate(rule.hours, rule.working_hours)
        self.state: KeyedState[Any] = KeyedState(limits.max_keys, self.new_state)

    def new_state(self) -> Any:
        return None

    def handlers(self) -> dict[str, Handler]:
        selectors = getattr(self.rule, "events", [])
        where = getattr(self.rule, "where", {})
        return {
            event_type: self._handler(all_of([p for p in (pred, self.when) if p is not None]))
            for event_type, pred in selectors_by_type(selectors, where).items()
        }

    def _handler(self, pred: Predicate | None) -> Handler:
        observe = self.observe
        key = self.key

        def handle(event: AuditEvent, t: float, seq: int) -> Fire | None:
            if pred is not None and not pred(event):
                return None
            k = key(event)
            if k is None:
                self.missing += 1
                return None
            return observe(event, t, seq, k)

        return handle

    def observe(self, event: AuditEvent, t: float, seq: int, key: str) -> Fire | None:
        return Fire(key, (seq,), t)

    @property
    def evictions(self) -> int:
        return self.state.evictions

    def snapshot(self) -> dict[str, Any]:
        keys = [[k, self.dump(s)] for k, s in self.state.items()]
        return {"keys": keys, "evictions": self.state.evictions, "missing": self.missing}

    def restore(self, data: dict[str, Any]) -> None:
        for k, s in data["keys"]:
            self.state.put(k, self.load(s))
        self.state.evictions = int(data["evictions"])
        self.missing = int(data["missing"])

    def dump(self, state: Any) -> Any:
        return state

    def load(self, data: Any) -> Any:
        return data


class MatchDetector(Detector):
    """Every matching event fires; a missing group-by value is counted and shown as ``-``."""

    rule: MatchRule

    def _handler(self, pred: Predicate | None) -> Handler:
        key = self.key
        width = max(len(self.rule.group_by), 1)

        def handle(event: AuditEvent, t: float, seq: int) -> Fire | None:
            if pred is not None and not pred(event):
                return None
            k = key(event)
            if k is None:
                self.missing += 1
                k = "\x1f".join(["-"] * width)
            return Fire(k, (seq,), t)

        return handle


class ThresholdDetector(Detector):
    """Count, distinct count or sum per key over a sliding window, compared with ``more_than``."""

    rule: ThresholdRule

    def __init__(self, rule: ThresholdRule, limits: Limits) -> None:
        super().__init__(rule, limits)
        self.window = rule.window.total_seconds()
        self.more_than = rule.more_than
        path = rule.distinct or rule.sum
        self.value = getter(path) if path else None
        self.measure = "distinct" if rule.distinct else ("sum" if rule.sum else "count")

    def new_state(self) -> Window:
        return Window(self.limits.max_events_per_key)

    def observe(self, event: AuditEvent, t: float, seq: int, key: str) -> Fire | None:
        value = None
        if self.value is not None:
            value = self.value(event)
            if value is None or (self.measure == "sum" and (type(value) is bool or not isinstance(value, int | float))):
                self.missing += 1
                return None
            if type(value) is not str and self.measure == "distinct":
                value = str(value)
        w: Window = self.state.get(key)
        w.expire(t - self.window)
        w.add(t, seq, value)
        measure = w.count if self.measure == "count" else (w.distinct if self.measure == "distinct" else w.total)
        if measure <= self.more_than:
            return None
        facts = {self.measure: measure, "more_than": self.more_than, "window_s": self.window}
        return Fire(key, w.evidence(self.limits.max_evidence), w.first_time(), facts)

    def dump(self, state: Window) -> Any:
        return state.snapshot()

    def load(self, data: Any) -> Window:
        return Window.restore(data, self.limits.max_events_per_key)


class SequenceDetector(Detector):
    """``first`` at least ``min_count`` times, then ``then`` ``min_count`` times, same key, in the window."""

    rule: SequenceRule

    def __init__(self, rule: SequenceRule, limits: Limits) -> None:
        super().__init__(rule, limits)
        self.window = rule.window.total_seconds()

    def new_state(self) -> list[Window]:
        return [Window(self.limits.max_events_per_key), Window(self.limits.max_events_per_key)]

    def handlers(self) -> dict[str, Handler]:
        firsts = selectors_by_type(self.rule.first.events, self.rule.where)
        thens = selectors_by_type(self.rule.then.events, self.rule.where)
        out: dict[str, Handler] = {}
        for event_type in {*firsts, *thens}:
            out[event_type] = self._step_handler(
                event_type in firsts, firsts.get(event_type), event_type in thens, thens.get(event_type)
            )
        return out

    def _step_handler(self, in_first: bool, first: Predicate | None, in_then: bool, then: Predicate | None) -> Handler:
        key = self.key
        when = self.when

        def handle(event: AuditEvent, t: float, seq: int) -> Fire | None:
            if when is not None and not when(event):
                return None
            is_first = in_first and (first is None or first(event))
            is_then = in_then and (then is None or then(event))
            if not (is_first or is_then):
                return None
            k = key(event)
            if k is None:
                self.missing += 1
                return None
            return self.step(t, seq, k, is_first, is_then)

        return handle

    def step(self, t: float, seq: int, key: str, is_first: bool, is_then: bool) -> Fire | None:
        state: list[Window] | None = self.state.get(key) if is_first else self.state.peek(key)
        if state is None:
            return None
        firsts, thens = state
        firsts.expire(t - self.window)
        thens.expire(t - self.window)
        if is_then and firsts.count >= self.rule.first.min_count:
            thens.add(t, seq)
            if thens.count >= self.rule.then.min_count:
                evidence = firsts.evidence(self.limits.max_evidence) + thens.evidence(self.limits.max_evidence)
                fire = Fire(key, evidence, firsts.first_time(), {"first": firsts.count, "then": thens.count})
                firsts.clear()
                thens.clear()
                return fire
        if is_first:
            firsts.add(t, seq)
        return None

    def dump(self, state: list[Window]) -> Any:
        return [w.snapshot() for w in state]

    def load(self, data: Any) -> list[Window]:
        return [Window.restore(d, self.limits.max_events_per_key) for d in data]


class FirstSeenDetector(Detector):
    """A value of ``field`` not seen for the key within ``lookback``, once the key has ``min_history``."""

    rule: FirstSeenRule

    def __init__(self, rule: FirstSeenRule, limits: Limits) -> None:
        super().__init__(rule, limits)
        self.value = getter(rule.field)
        self.lookback = rule.lookback.total_seconds()
        self.min_history = rule.min_history.total_seconds()

    def new_state(self) -> list[Any]:
        return [None, {}]

    def observe(self, event: AuditEvent, t: float, seq: int, key: str) -> Fire | None:
        value = self.value(event)
        if value is None or value == "":
            self.missing += 1
            return None
        value = value if type(value) is str else str(value)
        state = self.state.get(key)
        if state[0] is None:
            state[0] = t
        seen: dict[str, float] = state[1]
        last = seen.pop(value, None)
        seen[value] = t
        if len(seen) > self.rule.max_values:
            del seen[next(iter(seen))]
        if last is not None and t - last <= self.lookback:
            return None
        if t - state[0] < self.min_history:
            return None
        known = [v for v in seen if v != value][-5:]
        return Fire(key, (seq,), t, {"field": self.rule.field, "value": value, "known": known})


class BaselineDetector(Detector):
    """The key's count in ``window`` against ``factor`` times its own rate since the rule started watching.

    History is measured from the first event the rule saw at all, not from the key's
    first event: a user who never exported in three weeks of watching has a rate near
    zero, and a burst from them stands out.
    """

    rule: BaselineRule

    def __init__(self, rule: BaselineRule, limits: Limits) -> None:
        super().__init__(rule, limits)
        self.window = rule.window.total_seconds()
        self.min_history = rule.min_history.total_seconds()
        self.started: float | None = None

    def new_state(self) -> list[Any]:
        return [0, Window(self.limits.max_events_per_key)]

    def observe(self, event: AuditEvent, t: float, seq: int, key: str) -> Fire | None:
        if self.started is None:
            self.started = t
        state = self.state.get(key)
        w: Window = state[1]
        state[0] += w.expire(t - self.window)
        w.add(t, seq)
        if w.count < self.rule.min_count or t - self.started < self.min_history:
            return None
        span = max(t - self.window - self.started, self.window)
        expected = max(state[0], 1) * self.window / span
        if w.count <= self.rule.factor * expected:
            return None
        facts = {"count": w.count, "expected": round(expected, 4), "factor": self.rule.factor}
        return Fire(key, w.evidence(self.limits.max_evidence), w.first_time(), facts)

    def snapshot(self) -> dict[str, Any]:
        return {**super().snapshot(), "started": self.started}

    def restore(self, data: dict[str, Any]) -> None:
        super().restore(data)
        self.started = data["started"]

    def dump(self, state: list[Any]) -> Any:
        return [state[0], state[1].snapshot()]

    def load(self, data: Any) -> list[Any]:
        return [int(data[0]), Window.restore(data[1], self.limits.max_events_per_key)]


_KINDS: dict[type, type[Detector]] = {
    MatchRule: MatchDetector,
    ThresholdRule: ThresholdDetector,
    SequenceRule: SequenceDetector,
    FirstSeenRule: FirstSeenDetector,
    BaselineRule: BaselineDetector,
}


def build_detector(rule: Rule, limits: Limits) -> Detector | None:
    """The detector of an event-driven rule; ``None`` for ``escalate`` (which reacts to alerts)."""
    cls = _KINDS.get(type(rule))
    return cls(rule, limits) if cls else None
