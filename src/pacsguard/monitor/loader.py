"""Loading rule files: the defaults shipped with pacsguard, then a site's ``rules/*.yaml``.

A site file may add ``rules``, change fields of a rule by id under ``overrides`` (a
threshold, a window, ``enabled: false``), name its networks (``networks``: CIDR -> name)
and point at a MaxMind-format database (``geoip``). Every problem names the file, the
line, the rule id and the field.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from pacsguard import yamlfile
from pacsguard.errors import ConfigError, Problem
from pacsguard.monitor.rules import KINDS, RULE_MODELS, EscalateRule, Rule

__all__ = ["RuleSet", "default_rule_files", "load_rules", "parse_rule_file"]

_FILE_KEYS = ("rules", "overrides", "networks", "geoip")


@dataclass(frozen=True)
class RuleSet:
    """The rules in force (enabled ones), those disabled by the site, and the geo settings."""

    rules: tuple[Rule, ...]
    disabled: tuple[str, ...] = ()
    origin: dict[str, str] = field(default_factory=dict)
    networks: dict[str, str] = field(default_factory=dict)
    geoip: Path | None = None

    def by_id(self, rule_id: str) -> Rule:
        """The enabled rule ``rule_id``; raises ``KeyError``."""
        for rule in self.rules:
            if rule.id == rule_id:
                return rule
        raise KeyError(rule_id)


@dataclass
class _Raw:
    data: dict[str, Any]
    locator: yamlfile.Locator
    base: tuple[str | int, ...]
    overrides: list[tuple[dict[str, Any], yamlfile.Locator, tuple[str | int, ...]]] = field(default_factory=list)


@dataclass
class _Collected:
    raws: dict[str, _Raw] = field(default_factory=dict)
    networks: dict[str, str] = field(default_factory=dict)
    geoip: Path | None = None
    problems: list[Problem] = field(default_factory=list)


def default_rule_files() -> list[tuple[str, str]]:
    """``(name, text)`` of each default rule file shipped in ``pacsguard/monitor/defaults``."""
    folder = resources.files("pacsguard.monitor") / "defaults"
    files = sorted((f for f in folder.iterdir() if f.name.endswith(".yaml")), key=lambda f: f.name)
    return [(f"pacsguard/monitor/defaults/{f.name}", f.read_text(encoding="utf-8")) for f in files]


def load_rules(site_rules: Path | None = None, *, defaults: bool = True) -> RuleSet:
    """The default rules with a site's ``rules/*.yaml`` applied; raises ``ConfigError`` listing every problem."""
    found = _Collected()
    if defaults:
        for name, text in default_rule_files():
            _collect(Path(name), text, found, site=False)
    if site_rules is not None and site_rules.is_dir():
        for path in sorted(site_rules.glob("*.yaml")):
            _collect(path, None, found, site=True)
    rules, disabled = _build(found)
    if found.problems:
        raise ConfigError(found.problems)
    origin = {rule_id: _origin(raw) for rule_id, raw in found.raws.items()}
    return RuleSet(tuple(rules), tuple(disabled), origin, found.networks, found.geoip)


def parse_rule_file(path: Path, text: str | None = None) -> RuleSet:
    """One rule file on its own (no defaults); raises ``ConfigError``."""
    found = _Collected()
    _collect(path, text, found, site=True)
    rules, disabled = _build(found)
    if found.problems:
        raise ConfigError(found.problems)
    return RuleSet(tuple(rules), tuple(disabled), {}, found.networks, found.geoip)


def _origin(raw: _Raw) -> str:
    files = [raw.locator.file, *(loc.file for _, loc, _ in raw.overrides)]
    names = ["default" if str(f).startswith("pacsguard/") else Path(f).name for f in files]
    return " + ".join(dict.fromkeys(names))


def _collect(path: Path, text: str | None, found: _Collected, *, site: bool) -> None:
    try:
        data, loc = yamlfile.load(path, text)
    except ConfigError as exc:
        found.problems.extend(exc.problems)
        return
    if data is None:
        return
    if not isinstance(data, dict):
        found.problems.append(loc.problem((), "a rule file is a mapping", "keys " + ", ".join(_FILE_KEYS)))
        return
    for key in data:
        if key not in _FILE_KEYS:
            found.problems.append(loc.problem((key,), "unknown key", "one of " + ", ".join(_FILE_KEYS)))
    for i, item in enumerate(_list(data, "rules", loc, found)):
        _add_rule(item, loc, ("rules", i), found)
    for i, item in enumerate(_list(data, "overrides", loc, found)):
        _add_override(item, loc, ("overrides", i), found)
    _add_networks(data.get("networks"), loc, found)
    if data.get("geoip") is not None:
        if isinstance(data["geoip"], str) and data["geoip"]:
            found.geoip = (
                Path(data["geoip"]) if Path(data["geoip"]).is_absolute() else path.parent.parent / data["geoip"]
            )
        else:
            found.problems.append(loc.problem(("geoip",), "not a file path", "a path to a .mmdb file"))


def _list(data: dict[str, Any], key: str, loc: yamlfile.Locator, found: _Collected) -> list[Any]:
    value = data.get(key) or []
    if not isinstance(value, list):
        found.problems.append(loc.problem((key,), "must be a list", f"a list of {key}"))
        return []
    return value


def _add_rule(item: Any, loc: yamlfile.Locator, base: tuple[str | int, ...], found: _Collected) -> None:
    if not isinstance(item, dict) or not isinstance(item.get("id"), str):
        found.problems.append(loc.problem(base, "a rule is a mapping with an id", "id: some.rule-id"))
        return
    rule_id = item["id"]
    if rule_id in found.raws:
        other = found.raws[rule_id].locator
        found.problems.append(
            loc.problem((*base, "id"), f"rule {rule_id!r}: duplicate id (also in {other.file})", "a unique id")
        )
        return
    found.raws[rule_id] = _Raw(item, loc, base)


def _add_override(item: Any, loc: yamlfile.Locator, base: tuple[str | int, ...], found: _Collected) -> None:
    if not isinstance(item, dict) or not isinstance(item.get("id"), str):
        found.problems.append(loc.problem(base, "an override is a mapping with the id of a rule", "id: rule-id"))
        return
    raw = found.raws.get(item["id"])
    if raw is None:
        found.problems.append(loc.problem((*base, "id"), f"no rule {item['id']!r} to override", "a known rule id"))
        return
    for key in ("kind",):
        if key in item and item[key] != raw.data.get(key):
            found.problems.append(loc.problem((*base, key), f"rule {item['id']!r}: an override cannot change the kind"))
    raw.overrides.append(({k: v for k, v in item.items() if k not in ("id", "kind")}, loc, base))


def _add_networks(value: Any, loc: yamlfile.Locator, found: _Collected) -> None:
    if value is None:
        return
    if not isinstance(value, dict):
        found.problems.append(loc.problem(("networks",), "must be a mapping", "CIDR: name"))
        return
    for cidr, name in value.items():
        try:
            ipaddress.ip_network(str(cidr), strict=False)
        except ValueError:
            found.problems.append(
                loc.problem(("networks", cidr), f"not a network: {cidr!r}", "a CIDR such as 10.0.0.0/8")
            )
            continue
        if not isinstance(name, str) or not name:
            found.problems.append(loc.problem(("networks", cidr), "the network needs a name", "e.g. hospital LAN"))
            continue
        found.networks[str(cidr)] = name


def _build(found: _Collected) -> tuple[list[Rule], list[str]]:
    rules: list[Rule] = []
    disabled: list[str] = []
    for rule_id, raw in found.raws.items():
        rule = _validate(rule_id, raw, found.problems)
        if rule is None:
            continue
        if rule.enabled:
            rules.append(rule)
        else:
            disabled.append(rule_id)
    known = {r.id for r in rules} | set(disabled)
    for rule in rules:
        if isinstance(rule, EscalateRule):
            raw = found.raws[rule.id]
            for key in ("rules", "after"):
                for i, ref in enumerate(getattr(rule, key)):
                    if ref not in known:
                        found.problems.append(
                            raw.locator.problem((*raw.base, key, i), f"rule {rule.id!r}: no rule {ref!r}", "a rule id")
                        )
    return rules, disabled


def _validate(rule_id: str, raw: _Raw, problems: list[Problem]) -> Rule | None:
    data = dict(raw.data)
    origin: dict[str, tuple[yamlfile.Locator, tuple[str | int, ...]]] = {}
    for fields, loc, base in raw.overrides:
        data.update(fields)
        origin.update(dict.fromkeys(fields, (loc, base)))
    kind = data.get("kind")
    if kind not in KINDS:
        problems.append(
            raw.locator.problem(
                (*raw.base, "kind"), f"rule {rule_id!r}: unknown kind {kind!r}", "one of " + ", ".join(KINDS)
            )
        )
        return None
    try:
        rule: Rule = RULE_MODELS[kind].model_validate(data)  # type: ignore[assignment]
    except ValidationError as exc:
        for item in exc.errors():
            loc, base = (
                origin.get(str(item["loc"][0]), (raw.locator, raw.base)) if item["loc"] else (raw.locator, raw.base)
            )
            message = item["msg"].removeprefix("Value error, ")
            if item["type"] == "extra_forbidden":
                message = f"unknown key {item['loc'][-1]!r}"
            problems.append(loc.problem((*base, *item["loc"]), f"rule {rule_id!r}: {message}"))
        return None
    return rule
