"""Compiling rule text into fast callables: field getters, conditions, keys, working hours.

Everything here is done once when the engine is built, so that per event the engine
runs only small closures and C-level attribute getters.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from operator import attrgetter
from typing import Any
from zoneinfo import ZoneInfo

from pacsguard.domain.events import AuditEvent
from pacsguard.monitor.rules import Selector, WorkingHours

__all__ = ["Getter", "Predicate", "all_of", "any_of", "condition", "getter", "hours_predicate", "key_function"]

Getter = Callable[[AuditEvent], Any]
Predicate = Callable[[AuditEvent], bool]
KeyFunction = Callable[[AuditEvent], str | None]

_DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def getter(path: str) -> Getter:
    """A function reading ``path`` (already validated) from an event; ``None`` when absent."""
    head, _, tail = path.partition(".")
    if head == "detail":
        return lambda e: e.detail.get(tail)
    if head == "decision":
        return lambda e: None if e.decision is None else getattr(e.decision, tail)
    if head == "outcome":
        return lambda e: e.outcome.value
    return attrgetter(path)


def condition(path: str, test: Any) -> Predicate:
    """A predicate for one ``where`` entry: a plain value means equality, else ``{op: value}``."""
    get = getter(path)
    if not isinstance(test, dict):
        return lambda e: get(e) == test
    ((op, value),) = test.items()
    return _OPERATORS[op](get, value)


def _contains(get: Getter, value: Any) -> Predicate:
    def test(e: AuditEvent) -> bool:
        found = get(e)
        return found is not None and value in found

    return test


def _compare(compare: Callable[[Any, Any], bool]) -> Callable[[Getter, Any], Predicate]:
    def build(get: Getter, value: Any) -> Predicate:
        def test(e: AuditEvent) -> bool:
            found = get(e)
            if found is None or isinstance(found, bool) or not isinstance(found, int | float):
                return False
            return compare(found, value)

        return test

    return build


def _not(build: Callable[[Getter, Any], Predicate]) -> Callable[[Getter, Any], Predicate]:
    def negated(get: Getter, value: Any) -> Predicate:
        inner = build(get, value)
        return lambda e: not inner(e)

    return negated


def _in(get: Getter, value: Any) -> Predicate:
    allowed = frozenset(value) if isinstance(value, list) else frozenset([value])
    return lambda e: get(e) in allowed


def _eq(get: Getter, value: Any) -> Predicate:
    return lambda e: get(e) == value


def _exists(get: Getter, value: Any) -> Predicate:
    want = bool(value)
    return lambda e: (get(e) is not None) is want


_OPERATORS: dict[str, Callable[[Getter, Any], Predicate]] = {
    "eq": _eq,
    "ne": _not(_eq),
    "in": _in,
    "not_in": _not(_in),
    "contains": _contains,
    "not_contains": _not(_contains),
    "gt": _compare(lambda a, b: a > b),
    "gte": _compare(lambda a, b: a >= b),
    "lt": _compare(lambda a, b: a < b),
    "lte": _compare(lambda a, b: a <= b),
    "exists": _exists,
}


def all_of(predicates: Sequence[Predicate]) -> Predicate | None:
    """The conjunction, or ``None`` when there is nothing to test."""
    preds = tuple(predicates)
    if not preds:
        return None
    if len(preds) == 1:
        return preds[0]
    if len(preds) == 2:
        first, second = preds
        return lambda e: first(e) and second(e)
    return lambda e: all(p(e) for p in preds)


def any_of(predicates: Sequence[Predicate | None]) -> Predicate | None:
    """The disjunction; ``None`` (always true) if any part is always true."""
    if any(p is None for p in predicates):
        return None
    preds = tuple(p for p in predicates if p is not None)
    if len(preds) == 1:
        return preds[0]
    return lambda e: any(p(e) for p in preds)


def where_predicate(where: Mapping[str, Any]) -> Predicate | None:
    return all_of([condition(path, test) for path, test in where.items()])


def selectors_by_type(selectors: Sequence[Selector], where: Mapping[str, Any]) -> dict[str, Predicate | None]:
    """Per event type, the predicate an event of that type must satisfy (``None``: any)."""
    common = where_predicate(where)
    per_type: dict[str, list[Predicate | None]] = {}
    for sel in selectors:
        per_type.setdefault(sel.type, []).append(where_predicate(sel.where))
    out: dict[str, Predicate | None] = {}
    for event_type, preds in per_type.items():
        own = any_of(preds)
        out[event_type] = all_of([p for p in (own, common) if p is not None])
    return out


def key_function(fields: Sequence[str]) -> KeyFunction:
    """The grouping key of an event (values joined by ``\\x1f``), or ``None`` if a field is missing."""
    getters = [getter(f) for f in fields]
    if not getters:
        return lambda e: ""
    if len(getters) == 1:
        (get,) = getters

        def single(e: AuditEvent) -> str | None:
            value = get(e)
            if value is None or value == "":
                return None
            return value if type(value) is str else str(value)

        return single

    def multi(e: AuditEvent) -> str | None:
        values = [g(e) for g in getters]
        if any(v is None or v == "" for v in values):
            return None
        return "\x1f".join(str(v) for v in values)

    return multi


def subject_of(fields: Sequence[str], key: str) -> str:
    """The alert subject ``field=value,...`` for a grouping key."""
    if not fields:
        return "*"
    return ",".join(f"{f}={v}" for f, v in zip(fields, key.split("\x1f"), strict=False))


def hours_predicate(mode: str, hours: WorkingHours) -> Predicate | None:
    """Events inside (``working``) or outside (``off``) the working hours; ``None`` for ``any``."""
    if mode == "any":
        return None
    zone = ZoneInfo(hours.timezone) if hours.timezone != "UTC" else UTC
    days = frozenset(_DAYS.index(d) for d in hours.days)
    start = _minutes(hours.start)
    end = _minutes(hours.end)

    def working(e: AuditEvent) -> bool:
        at = e.occurred_at
        local = (at if at.tzinfo else at.replace(tzinfo=UTC)).astimezone(zone)
        minute = local.hour * 60 + local.minute
        inside = start <= minute < end if start <= end else (minute >= start or minute < end)
        return inside and local.weekday() in days

    if mode == "working":
        return working
    return lambda e: not working(e)


def _minutes(hhmm: str) -> int:
    hour, minute = hhmm.split(":")
    return int(hour) * 60 + int(minute)


def timestamp(at: datetime) -> float:
    """POSIX seconds of an event time; a naive time is taken to be UTC."""
    return (at if at.tzinfo else at.replace(tzinfo=UTC)).timestamp()
