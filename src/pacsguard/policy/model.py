"""Validated policy values: ``Rule`` with its ``Conditions``, and the ``PolicySet`` of a site.

These are what the loader produces and the compiler indexes. ``Conditions.lacks`` is the
one place that says which condition a request fails; the compiled fast path and the
explanations both rest on it.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from zoneinfo import ZoneInfo

from pacsguard.domain import Action, AuthStrength, Obligation, Purpose, RoleRef, Sensitivity
from pacsguard.domain.decision import AccessRequest, ConsentState

__all__ = ["Check", "Conditions", "Network", "PolicySet", "Rule", "Test", "When"]

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Test = Callable[["AccessRequest", "When | None"], bool]


@dataclass(frozen=True, slots=True)
class Check:
    """One condition: ``test`` is the fast yes/no, ``describe`` says what a request lacked."""

    test: Test
    describe: Callable[[AccessRequest], str]
    needs_when: bool = False


@dataclass(frozen=True, slots=True)
class When:
    """The request-time facts conditions look at, computed once per decision."""

    local_minute: int
    weekday: int
    ip: ipaddress.IPv4Address | ipaddress.IPv6Address | None

    @classmethod
    def of(cls, now: datetime, tz: ZoneInfo, ip: str | None) -> When:
        local = now.astimezone(tz)
        address = None
        if ip is not None:
            try:
                address = ipaddress.ip_address(ip)
            except ValueError:
                address = None
        return cls(local.hour * 60 + local.minute, local.weekday(), address)


@dataclass(frozen=True, slots=True)
class Conditions:
    """A rule's conditions; ``None`` (or empty) means "any"."""

    zones: frozenset[str] | None = None
    subtree: frozenset[str] | None = None
    max_sensitivity: Sensitivity | None = None
    min_sensitivity: Sensitivity | None = None
    modalities: frozenset[str] | None = None
    consent: frozenset[ConsentState] | None = None
    min_auth_strength: AuthStrength | None = None
    networks: tuple[tuple[str, tuple[Network, ...]], ...] = ()
    purposes: frozenset[Purpose] | None = None
    hours: tuple[int, int] | None = None
    weekdays: frozenset[int] | None = None

    @property
    def needs_when(self) -> bool:
        """True when a condition looks at the local time or the client's address."""
        return self.hours is not None or self.weekdays is not None or bool(self.networks)

    def is_empty(self) -> bool:
        return self == Conditions()

    def lacks(self, request: AccessRequest, when: When | None) -> str | None:
        """The first condition ``request`` fails, in words, or ``None`` when all hold."""
        return next((c.describe(request) for c in self.checks() if not c.test(request, when)), None)

    def all_lacks(self, request: AccessRequest, when: When | None) -> list[str]:
        """Every condition ``request`` fails, in words."""
        return [c.describe(request) for c in self.checks() if not c.test(request, when)]

    def checks(self) -> tuple[Check, ...]:
        """One small function per condition that is set; the compiler keeps them per rule."""
        out: list[Check] = []
        if self.zones is not None:
            out.append(_zone_check(self.zones))
        if self.subtree is not None:
            out.append(_subtree_check(self.subtree))
        if self.max_sensitivity is not None:
            out.append(_max_sensitivity_check(self.max_sensitivity))
        if self.min_sensitivity is not None:
            out.append(_min_sensitivity_check(self.min_sensitivity))
        if self.modalities is not None:
            out.append(_modality_check(self.modalities))
        if self.consent is not None:
            out.append(_consent_check(self.consent))
        if self.min_auth_strength is not None:
            out.append(_auth_check(self.min_auth_strength))
        if self.purposes is not None:
            out.append(_purpose_check(self.purposes))
        if self.networks:
            out.append(_network_check(self.networks))
        if self.hours is not None:
            out.append(_hours_check(self.hours))
        if self.weekdays is not None:
            out.append(_weekday_check(self.weekdays))
        return tuple(out)

    def implied_by(self, other: Conditions) -> bool:
        """True when every request ``other`` admits is admitted here too (a sound, partial test:
        each condition set here must be set identically in ``other``)."""
        return all(
            mine in (None, (), theirs)
            for mine, theirs in (
                (getattr(self, name), getattr(other, name))
                for name in Conditions.__dataclass_fields__  # iterate the fields by name
            )
        )


def _check(test: Test, describe: Callable[[AccessRequest], str], needs_when: bool = False) -> Check:
    return Check(test, describe, needs_when)


def _zone_check(zones: frozenset[str]) -> Check:
    names = sorted(zones)
    return _check(
        lambda req, when: req.resource.zone in zones,
        lambda req: f"the study's zone {req.resource.zone} is not one of {names}",
    )


def _subtree_check(zones: frozenset[str]) -> Check:
    return _check(
        lambda req, when: req.resource.zone in zones,
        lambda req: f"the study's zone {req.resource.zone} is outside the sub-tree",
    )


def _max_sensitivity_check(limit: Sensitivity) -> Check:
    return _check(
        lambda req, when: req.resource.sensitivity <= limit,
        lambda req: f"sensitivity {int(req.resource.sensitivity)} is above {int(limit)}",
    )


def _min_sensitivity_check(limit: Sensitivity) -> Check:
    return _check(
        lambda req, when: req.resource.sensitivity >= limit,
        lambda req: f"sensitivity {int(req.resource.sensitivity)} is below {int(limit)}",
    )


def _modality_check(modalities: frozenset[str]) -> Check:
    names = sorted(modalities)
    return _check(
        lambda req, when: (req.resource.modality or "").upper() in modalities,
        lambda req: f"modality {req.resource.modality or '-'} is not one of {names}",
    )


def _consent_check(states: frozenset[ConsentState]) -> Check:
    names = sorted(s.value for s in states)
    return _check(
        lambda req, when: req.resource.consent in states,
        lambda req: f"consent state {req.resource.consent.value} is not one of {names}",
    )


def _auth_check(minimum: AuthStrength) -> Check:
    return _check(
        lambda req, when: req.subject.auth_strength >= minimum,
        lambda req: f"authentication {req.subject.auth_strength.name.lower()} is weaker than {minimum.name.lower()}",
    )


def _purpose_check(purposes: frozenset[Purpose]) -> Check:
    names = sorted(p.value for p in purposes)
    return _check(
        lambda req, when: req.context.purpose in purposes,
        lambda req: f"purpose {req.context.purpose.value} is not one of {names}",
    )


def _network_check(networks: tuple[tuple[str, tuple[Network, ...]], ...]) -> Check:
    names = [name for name, _ in networks]
    flat = tuple(net for _, nets in networks for net in nets)

    def test(req: AccessRequest, when: When | None) -> bool:
        ip = when.ip if when is not None else None
        return ip is not None and any(ip in net for net in flat)

    return _check(test, lambda req: f"address {req.context.ip or '-'} is not in the networks {names}", True)


def _hours_check(hours: tuple[int, int]) -> Check:
    return _check(
        lambda req, when: when is not None and _in_hours(when.local_minute, hours),
        lambda req: f"outside the permitted hours {_clock(hours[0])}-{_clock(hours[1])}",
        True,
    )


def _weekday_check(days: frozenset[int]) -> Check:
    return _check(
        lambda req, when: when is not None and when.weekday in days,
        lambda req: "not on a permitted weekday",
        True,
    )


def _clock(minute: int) -> str:
    return f"{minute // 60:02d}:{minute % 60:02d}"


def _in_hours(minute: int, hours: tuple[int, int]) -> bool:
    start, end = hours
    if start <= end:
        return start <= minute < end
    return minute >= start or minute < end


@dataclass(frozen=True, slots=True)
class Rule:
    """One validated rule of zone ``zone``; it governs the studies of that zone's sub-tree."""

    id: str
    zone: str
    effect: str
    roles: frozenset[RoleRef]
    actions: frozenset[Action]
    conditions: Conditions = field(default_factory=Conditions)
    obligations: tuple[Obligation, ...] = ()
    absolute: bool = False
    description: str = ""
    file: str = ""
    line: int | None = None

    @property
    def permits(self) -> bool:
        return self.effect == "permit"


@dataclass(frozen=True)
class PolicySet:
    """Every rule of a site, with the site-wide timezone and named networks."""

    rules: tuple[Rule, ...] = ()
    timezone: str = "UTC"
    networks: Mapping[str, tuple[Network, ...]] = field(default_factory=dict)
