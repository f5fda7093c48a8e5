"""The detection rule language: one YAML schema, six kinds, validated with located errors.

A rule file holds ``rules:`` (full definitions), ``overrides:`` (change a field of a rule
by id, or ``enabled: false`` to disable it), and optionally ``networks:`` (CIDR -> site
name) and ``geoip:`` (a MaxMind-format file). Field paths address the ``AuditEvent``:
``type``, ``outcome``, ``actor.principal_id``, ``objects.study_uid``, ``detail.<key>``.
"""

from __future__ import annotations

import dataclasses
import re
from datetime import timedelta
from enum import StrEnum
from typing import Annotated, Any, Literal, get_args
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, field_validator, model_validator

from pacsguard.domain.events import Actor, DecisionRef, ObjectRef

__all__ = [
    "ACTIONS",
    "CHANNELS",
    "KINDS",
    "BaselineRule",
    "EscalateRule",
    "FirstSeenRule",
    "MatchRule",
    "Response",
    "Rule",
    "Selector",
    "SequenceRule",
    "SequenceStep",
    "Severity",
    "ThresholdRule",
    "WorkingHours",
    "known_field",
    "parse_duration",
]

Action = Literal[
    "lock_account",
    "revoke_sessions",
    "expire_shares",
    "block_ip",
    "require_mfa_reenrolment",
    "suspend_device",
]
Channel = Literal["dashboard", "webhook", "email", "syslog"]
Day = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
ACTIONS: tuple[str, ...] = get_args(Action)
CHANNELS: tuple[str, ...] = get_args(Channel)
KINDS = ("match", "threshold", "sequence", "first_seen", "baseline", "escalate")
OPERATORS = ("eq", "ne", "in", "not_in", "contains", "not_contains", "gt", "gte", "lt", "lte", "exists")

_TOP_FIELDS = ("type", "outcome", "seq")
_GROUPS: dict[str, tuple[str, ...]] = {
    "actor": tuple(f.name for f in dataclasses.fields(Actor)),
    "objects": tuple(f.name for f in dataclasses.fields(ObjectRef)),
    "decision": tuple(f.name for f in dataclasses.fields(DecisionRef)),
}
_DURATION = re.compile(r"^(\d+)\s*(s|m|h|d|w)$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


class Severity(StrEnum):
    """Alert severity, in rising order; ``rank`` compares them."""

    INFO = "info"
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"
    URGENT = "urgent"

    @property
    def rank(self) -> int:
        return _SEVERITY_ORDER.index(self)


_SEVERITY_ORDER = list(Severity)


class Response(StrEnum):
    """What follows an alert: notify only, suggest containment, or contain automatically."""

    NOTIFY = "notify"
    SUGGEST = "suggest"
    CONTAIN = "contain"

    @property
    def rank(self) -> int:
        return list(Response).index(self)


def known_field(path: str) -> bool:
    """Whether ``path`` names a field of ``AuditEvent`` (``detail.<any key>`` always does)."""
    if path in _TOP_FIELDS:
        return True
    head, _, tail = path.partition(".")
    if head == "detail":
        return bool(tail)
    return tail in _GROUPS.get(head, ())


def field_names() -> str:
    groups = ", ".join(f"{g}.{{{','.join(names)}}}" for g, names in _GROUPS.items())
    return f"type, outcome, seq, {groups}, detail.<key>"


def parse_duration(value: object) -> timedelta:
    """``"10m"``, ``"1h"``, ``"7d"`` or seconds; raises ``ValueError`` if negative or malformed."""
    if isinstance(value, bool):
        raise ValueError("expected a duration such as 10m, 1h or 7d")
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str) and value.strip().startswith("-"):
        raise ValueError(f"negative duration {value!r}; durations must be positive")
    elif isinstance(value, str) and (m := _DURATION.match(value.strip())):
        seconds = float(int(m.group(1)) * _UNITS[m.group(2)])
    elif isinstance(value, timedelta):
        seconds = value.total_seconds()
    else:
        raise ValueError(f"not a duration: {value!r} (expected a number and a unit s, m, h, d or w, e.g. 10m)")
    if seconds < 0:
        raise ValueError(f"negative duration {value!r}; durations must be positive")
    return timedelta(seconds=seconds)


Duration = Annotated[timedelta, BeforeValidator(parse_duration)]


def _check_field(path: object) -> str:
    if not isinstance(path, str):
        raise ValueError(f"a field path is text such as actor.principal_id, not {path!r}")
    if not known_field(path):
        raise ValueError(f"unknown field {path!r}; fields are {field_names()}")
    return path


FieldPath = Annotated[str, BeforeValidator(_check_field)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _check_where(where: dict[str, Any]) -> dict[str, Any]:
    for path, test in where.items():
        _check_field(path)
        if isinstance(test, dict):
            if len(test) != 1:
                raise ValueError(f"condition on {path!r} must have exactly one operator of {', '.join(OPERATORS)}")
            (op,) = test
            if op not in OPERATORS:
                raise ValueError(f"unknown operator {op!r} on {path!r}; operators are {', '.join(OPERATORS)}")
    return where


Where = Annotated[dict[str, Any], AfterValidator(_check_where)]


class Selector(_Strict):
    """Which events a rule (or a step) looks at: an event type and optional conditions."""

    type: str = Field(min_length=1)
    where: Where = Field(default_factory=dict)


def _selectors(value: object) -> object:
    if isinstance(value, str):
        return [{"type": value}]
    if isinstance(value, list):
        return [{"type": v} if isinstance(v, str) else v for v in value]
    return value


Selectors = Annotated[list[Selector], BeforeValidator(_selectors), Field(min_length=1)]


class WorkingHours(_Strict):
    """The site's working hours: days, start and end (``HH:MM``) in a time zone.

    An end before the start (``19:00``-``07:00``) means the hours run over midnight.
    """

    days: list[Day] = Field(default_factory=lambda: list[Day](["mon", "tue", "wed", "thu", "fri"]))
    start: str = Field("07:00", pattern=r"^([01]\d|2[0-3]):[0-5]\d$")
    end: str = Field("19:00", pattern=r"^([01]\d|2[0-3]):[0-5]\d$|^24:00$")
    timezone: str = "UTC"

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r} (expected an IANA name such as Europe/Berlin)") from exc
        return value


class _RuleBase(_Strict):
    id: str = Field(pattern=r"^[a-z0-9][a-z0-9_.-]{0,80}$")
    title: str = Field(min_length=1)
    kind: str
    severity: Severity = Severity.MEDIUM
    enabled: bool = True
    description: str = ""
    group_by: list[FieldPath] = Field(default_factory=list)
    suppress: Duration = timedelta(minutes=30)
    response: Response = Response.NOTIFY
    actions: list[Action] = Field(default_factory=list)
    channels: list[Channel] = Field(default_factory=lambda: list[Channel](["dashboard"]))
    owner: str = "security-officer"
    hours: Literal["any", "working", "off"] = "any"
    working_hours: WorkingHours = Field(default_factory=WorkingHours)

    @model_validator(mode="after")
    def _actions_match_response(self) -> _RuleBase:
        if self.response is not Response.NOTIFY and not self.actions:
            raise ValueError(f"response {self.response.value!r} needs at least one of actions: {', '.join(ACTIONS)}")
        return self


class _EventRule(_RuleBase):
    events: Selectors
    where: Where = Field(default_factory=dict)


class MatchRule(_EventRule):
    """Alert on every matching event."""

    kind: Literal["match"]
    suppress: Duration = timedelta(0)


class ThresholdRule(_EventRule):
    """Alert when, per key, the count (or distinct count, or sum) in ``window`` exceeds ``more_than``."""

    kind: Literal["threshold"]
    window: Duration
    more_than: float = Field(ge=0)
    distinct: FieldPath | None = None
    sum: FieldPath | None = None

    @model_validator(mode="after")
    def _one_aggregate(self) -> ThresholdRule:
        if self.distinct and self.sum:
            raise ValueError("give either distinct or sum, not both")
        return self


class SequenceStep(_Strict):
    """A step of a sequence: its events and how many of them must occur."""

    events: Selectors
    min_count: int = Field(1, ge=1)


class SequenceRule(_RuleBase):
    """Alert when step ``first`` (``min_count`` times) is followed by ``then``, same key, within ``window``."""

    kind: Literal["sequence"]
    window: Duration
    first: SequenceStep
    then: SequenceStep
    where: Where = Field(default_factory=dict)


class FirstSeenRule(_EventRule):
    """Alert when ``field`` takes a value not seen for the key within ``lookback``.

    A key seen for less than ``min_history`` is still learning and does not alert.
    """

    kind: Literal["first_seen"]
    field: FieldPath
    lookback: Duration = timedelta(days=90)
    min_history: Duration = timedelta(days=1)
    max_values: int = Field(64, ge=1)


class BaselineRule(_EventRule):
    """Alert when the key's count in ``window`` exceeds ``factor`` times its own normal rate.

    ``min_history`` of history is needed before it alerts, and at least ``min_count`` events.
    """

    kind: Literal["baseline"]
    window: Duration
    factor: float = Field(gt=1)
    min_history: Duration = timedelta(days=7)
    min_count: int = Field(5, ge=1)


class EscalateRule(_RuleBase):
    """Raise the severity of ``rules``' alerts when one of ``after`` fired for the same subject within ``within``."""

    kind: Literal["escalate"]
    rules: list[str] = Field(min_length=1)
    after: list[str] = Field(min_length=1)
    within: Duration


Rule = MatchRule | ThresholdRule | SequenceRule | FirstSeenRule | BaselineRule | EscalateRule
RULE_MODELS: dict[str, type[BaseModel]] = {
    "match": MatchRule,
    "threshold": ThresholdRule,
    "sequence": SequenceRule,
    "first_seen": FirstSeenRule,
    "baseline": BaselineRule,
    "escalate": EscalateRule,
}
