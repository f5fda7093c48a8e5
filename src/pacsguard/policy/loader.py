"""Load ``policies/*.yaml`` into a ``PolicySet``, reporting every problem with file, line,
key and rule id: unknown roles, zones, actions and networks, wrong condition types, and
sub-zone permits of what a parent zone forbids (conflicts)."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pacsguard import yamlfile
from pacsguard.domain import Action, Obligation, RoleRef, ZoneTree
from pacsguard.errors import ConfigError, Problem
from pacsguard.policy.model import Conditions, Network, PolicySet, Rule
from pacsguard.policy.schema import HOURS, WEEKDAYS, PolicyFileSpec, RuleSpec

__all__ = ["load_policies", "parse_policy_files"]

ADMIN_ACTIONS = frozenset(a for a in Action if a.value.startswith("admin."))


@dataclass(frozen=True)
class _Parsed:
    path: Path
    spec: PolicyFileSpec
    locator: yamlfile.Locator


def load_policies(directory: Path, zones: ZoneTree) -> PolicySet:
    """Load every ``*.yaml`` directly in ``directory``; raises ``ConfigError`` listing every problem.

    A missing or empty directory gives an empty policy, which denies everything.
    """
    paths = sorted(directory.glob("*.yaml")) if directory.is_dir() else []
    return parse_policy_files(paths, zones)


def parse_policy_files(paths: Iterable[Path], zones: ZoneTree) -> PolicySet:
    """Parse and check ``paths`` together; raises ``ConfigError`` listing every problem."""
    problems: list[Problem] = []
    parsed: list[_Parsed] = []
    for path in paths:
        try:
            data, locator = yamlfile.load(path)
            if data is None:
                continue
            parsed.append(_Parsed(path, yamlfile.validate(PolicyFileSpec, data, locator), locator))
        except ConfigError as exc:
            problems.extend(exc.problems)
    timezone = _timezone(parsed, problems)
    networks = _networks(parsed, problems)
    rules = _rules(parsed, zones, networks, problems)
    problems.extend(_conflicts(rules, zones))
    if problems:
        raise ConfigError(problems)
    return PolicySet(tuple(rules), timezone, networks)


def _timezone(parsed: list[_Parsed], problems: list[Problem]) -> str:
    chosen: str | None = None
    for p in parsed:
        tz = p.spec.timezone
        if tz is None:
            continue
        try:
            ZoneInfo(tz)
        except (ZoneInfoNotFoundError, ValueError):
            problems.append(
                p.locator.problem(("timezone",), f"unknown timezone {tz!r}", "an IANA name like Europe/Oslo")
            )
            continue
        if chosen is not None and tz != chosen:
            problems.append(p.locator.problem(("timezone",), f"timezone {tz!r} differs from {chosen!r} set elsewhere"))
        chosen = chosen or tz
    return chosen or "UTC"


def _networks(parsed: list[_Parsed], problems: list[Problem]) -> dict[str, tuple[Network, ...]]:
    out: dict[str, tuple[Network, ...]] = {}
    for p in parsed:
        for name, cidrs in p.spec.networks.items():
            nets: list[Network] = []
            for i, cidr in enumerate(cidrs):
                try:
                    nets.append(ipaddress.ip_network(cidr, strict=False))
                except ValueError:
                    problems.append(p.locator.problem(("networks", name, i), f"not a network: {cidr!r}", "a CIDR"))
            if name in out and out[name] != tuple(nets):
                problems.append(
                    p.locator.problem(("networks", name), f"network {name!r} is defined differently elsewhere")
                )
            out[name] = tuple(nets)
    return out


def _rules(
    parsed: list[_Parsed], zones: ZoneTree, networks: dict[str, tuple[Network, ...]], problems: list[Problem]
) -> list[Rule]:
    rules: list[Rule] = []
    seen: dict[str, str] = {}
    for p in parsed:
        zone = p.spec.zone
        if p.spec.rules and zone is None:
            problems.append(p.locator.problem(("zone",), "a file with rules must name its zone", "zone: <zone id>"))
            continue
        if zone is not None and zone not in zones:
            problems.append(p.locator.problem(("zone",), f"unknown zone {zone!r}", "a zone of zones.yaml"))
            continue
        for i, spec in enumerate(p.spec.rules):
            at = ("rules", i)
            if spec.id in seen:
                problems.append(_located(p, spec, (*at, "id"), f"duplicate rule id (also in {seen[spec.id]})"))
            seen.setdefault(spec.id, str(p.path))
            rule = _rule(p, spec, at, zone or "", zones, networks, problems)
            if rule is not None:
                rules.append(rule)
    return rules


def _located(
    p: _Parsed, spec: RuleSpec, path: tuple[str | int, ...], message: str, expected: str | None = None
) -> Problem:
    return p.locator.problem(path, f"rule {spec.id!r}: {message}", expected)


def _rule(
    p: _Parsed,
    spec: RuleSpec,
    at: tuple[str | int, ...],
    zone: str,
    zones: ZoneTree,
    networks: dict[str, tuple[Network, ...]],
    problems: list[Problem],
) -> Rule | None:
    before = len(problems)
    roles = _roles(p, spec, at, zone, zones, problems)
    actions = _actions(p, spec, at, problems)
    conditions = _conditions(p, spec, at, zone, zones, networks, problems)
    if spec.absolute and spec.effect != "forbid":
        problems.append(_located(p, spec, (*at, "absolute"), "only a forbid can be absolute"))
    if len(problems) > before:
        return None
    obligations = tuple(sorted(Obligation(k, str(v)) for k, v in spec.obligations.model_dump().items() if v))
    return Rule(
        id=spec.id,
        zone=zone,
        effect=spec.effect,
        roles=frozenset(roles),
        actions=frozenset(actions),
        conditions=conditions,
        obligations=obligations,
        absolute=spec.absolute,
        description=spec.description,
        file=str(p.path),
        line=p.locator.line(at),
    )


def _roles(
    p: _Parsed, spec: RuleSpec, at: tuple[str | int, ...], zone: str, zones: ZoneTree, problems: list[Problem]
) -> list[RoleRef]:
    out = []
    for j, text in enumerate(spec.roles):
        try:
            ref = RoleRef.parse(text, zone)
        except ValueError as exc:
            problems.append(_located(p, spec, (*at, "roles", j), str(exc), "role or zone/role"))
            continue
        if ref not in zones.roles:
            problems.append(_located(p, spec, (*at, "roles", j), f"unknown role {str(ref)!r}", "a role of zones.yaml"))
            continue
        out.append(ref)
    return out


def _actions(p: _Parsed, spec: RuleSpec, at: tuple[str | int, ...], problems: list[Problem]) -> set[Action]:
    out: set[Action] = set()
    for j, text in enumerate(spec.actions):
        if text == "admin.*":
            out |= ADMIN_ACTIONS
            continue
        try:
            out.add(Action(text))
        except ValueError:
            known = ", ".join([a.value for a in Action if a not in ADMIN_ACTIONS] + ["admin.*"])
            problems.append(_located(p, spec, (*at, "actions", j), f"unknown action {text!r}", f"one of {known}"))
    return out


def _conditions(
    p: _Parsed,
    spec: RuleSpec,
    at: tuple[str | int, ...],
    zone: str,
    zones: ZoneTree,
    networks: dict[str, tuple[Network, ...]],
    problems: list[Problem],
) -> Conditions:
    when = spec.when
    here = (*at, "when")
    zone_set = _zone_list(p, spec, (*here, "zone"), when.zone, zone, zones, problems)
    subtree = _zone_list(p, spec, (*here, "subtree"), when.subtree, zone, zones, problems)
    nets: list[tuple[str, tuple[Network, ...]]] = []
    for j, name in enumerate(when.network or []):
        if name not in networks:
            problems.append(
                _located(p, spec, (*here, "network", j), f"unknown network {name!r}", "a name under networks:")
            )
        else:
            nets.append((name, networks[name]))
    return Conditions(
        zones=frozenset(zone_set) if zone_set is not None else None,
        subtree=frozenset(z for top in subtree for z in zones.subtree(top)) if subtree is not None else None,
        max_sensitivity=when.max_sensitivity,
        min_sensitivity=when.min_sensitivity,
        modalities=frozenset(m.upper() for m in when.modality) if when.modality else None,
        consent=frozenset(when.consent) if when.consent else None,
        min_auth_strength=when.min_auth_strength,
        networks=tuple(nets),
        purposes=frozenset(when.purpose) if when.purpose else None,
        hours=_hours(when.hours),
        weekdays=frozenset(WEEKDAYS.index(d) for d in when.weekdays) if when.weekdays else None,
    )


def _zone_list(
    p: _Parsed,
    spec: RuleSpec,
    path: tuple[str | int, ...],
    names: list[str] | None,
    zone: str,
    zones: ZoneTree,
    problems: list[Problem],
) -> list[str] | None:
    if names is None:
        return None
    out = []
    for j, name in enumerate(names):
        if name not in zones:
            problems.append(_located(p, spec, (*path, j), f"unknown zone {name!r}", "a zone of zones.yaml"))
        elif not zones.is_within(name, zone):
            problems.append(_located(p, spec, (*path, j), f"zone {name!r} is outside the policy's zone {zone!r}"))
        else:
            out.append(name)
    return out


def _hours(text: str | None) -> tuple[int, int] | None:
    if text is None:
        return None
    match = HOURS.match(text)
    assert match is not None  # the schema checked the pattern
    h1, m1, h2, m2 = (int(g) for g in match.groups())
    return h1 * 60 + m1, min(h2 * 60 + m2, 24 * 60)


def _conflicts(rules: list[Rule], zones: ZoneTree) -> list[Problem]:
    """A sub-zone permit that a parent's forbid fully covers is a conflict: it could never apply."""
    problems = []
    forbids = [r for r in rules if not r.permits]
    for permit in (r for r in rules if r.permits):
        parents = set(zones.ancestors(permit.zone)[1:])
        for forbid in forbids:
            if forbid.zone not in parents or not (forbid.actions & permit.actions):
                continue
            if not _roles_covered(permit.roles, forbid.roles, zones):
                continue
            if forbid.conditions.implied_by(permit.conditions):
                actions = ", ".join(sorted(a.value for a in forbid.actions & permit.actions))
                problems.append(
                    Problem(
                        permit.file,
                        f"rule {permit.id!r}: conflict: sub-zone {permit.zone!r} permits {actions}, which rule "
                        f"{forbid.id!r} of parent zone {forbid.zone!r} forbids ({forbid.file}:{forbid.line})",
                        permit.line,
                        f"rules.{permit.id}",
                        "a sub-zone may only narrow its parent's policy",
                    )
                )
    return problems


def _roles_covered(permitted: frozenset[RoleRef], forbidden: frozenset[RoleRef], zones: ZoneTree) -> bool:
    """True when some permitted role also carries a forbidden role (itself or as a junior)."""
    return any(zones.expand_role(role) & forbidden for role in permitted)
