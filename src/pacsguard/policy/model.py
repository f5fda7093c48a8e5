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

__all__ = ["Check", "Conditions", "Network", "PolicySet", "Rule", "When"]

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Check = Callable[["AccessRequest", "When | None"], "str | None"]


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
        return next((m for m in (check(request, when) for check in self.checks()) if m is not None), None)

    def all_lacks(self, request: AccessRequest, when: When | None) -> list[str]:
        """Every condition ``request`` fails, in words."""
        return [m for m in (check(request, when) for check in self.checks()) if m is not None]

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


def _zone_check(zones: frozenset[str]) -> Check:
    def check(request: AccessRequest, when: When | None) -> str | None:
        zone = request.resource.zone
        return None if zone in zones else f"the study's zone {zone} is not one of {sorted(zones)}"

    return check


def _subtree_check(zones: frozenset[str]) -> Check:
    def check(request: AccessRequest, when: When | None) -> str | None:
        zone = request.resource.zone
        return None if zone in zones else f"the study's zone {zone} is outside the sub-tree"

    return check


def _max_sensitivity_check(limit: Sensitivity) -> Check:
    def check(request: AccessRequest, when: When | None) -> str | None:
        level = request.resource.sensitivity
        return None if level <= limit else f"sensitivity {int(level)} is above {int(limit)}"

    return check


def _min_sensitivity_check(limit: Sensitivity) -> Check:
    def check(request: AccessRequest, when: When | None) -> str | None:
        level = request.resource.sensitivity
        return None if level >= limit else f"sensitivity {int(level)} is below {int(limit)}"

    return check


def _modality_check(modalities: frozenset[str]) -> Check:
    def check(request: AccessRequest, when: When | None) -> str | None:
        modality = (request.resource.modality or "").upper()
        return None if modality in modalities else f"modality {modality or '-'} is not one of {sorted(modalities)}"

    return check


def _consent_check(states: frozenset[ConsentState]) -> Check:
    def check(request: AccessRequest, when: When | None) -> str | None:
        state = request.resource.consent
        return None if state in states else f"consent state {state.value} is not one of {sorted(states)}"

    return check


def _auth_check(minimum: AuthStrength) -> Check:
    def check(request: AccessRequest, when: When | None) -> str | None:
        have = request.subject.auth_strength
        return None if have >= minimum else f"authentication {have.name.lower()} is weaker than {minimum.name.lower()}"

    return check


def _purpose_check(purposes: frozenset[Purpose]) -> Check:
    def check(request: AccessRequest, when: When | None) -> str | None:
        purpose = request.context.purpose
        return None if purpose in purposes else f"purpose {purpose.value} is not one of {sorted(purposes)}"

    return check


def _network_check(networks: tuple[tuple[str, tuple[Network, ...]], ...]) -> Check:
    names = [name for name, _ in networks]
    flat = tuple(net for _, nets in networks for net in nets)

    def check(request: AccessRequest, when: When | None) -> str | None:
        ip = when.ip if when is not None else None
        if ip is not None and any(ip in net for net in flat):
            return None
        return f"address {request.context.ip or '-'} is not in the networks {names}"

    return check


def _hours_check(hours: tuple[int, int]) -> Check:
    def check(request: AccessRequest, when: When | None) -> str | None:
        if when is not None and _in_hours(when.local_minute, hours):
            return None
        return f"outside the permitted hours {_clock(hours[0])}-{_clock(hours[1])}"

    return check


def _weekday_check(days: frozenset[int]) -> Check:
    def check(request: AccessRequest, when: When | None) -> str | None:
        return None if when is not None and when.weekday in days else "not on a permitted weekday"

    return check


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
