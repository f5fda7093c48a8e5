"""Loading a site's configuration files: ``zones.yaml`` here; policies, agreements and
detection rules in their own packages. Every loader reports all problems it finds, each
with file, line, key and what was expected."""

from __future__ import annotations

import shutil
from importlib import resources
from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from pacsguard import pki, yamlfile
from pacsguard.domain.zones import Role, RoleRef, Zone, ZoneTree
from pacsguard.errors import ConfigError, Problem

__all__ = ["load_zones", "parse_zones", "scaffold"]

TEMPLATE = "site_template"

Name = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_.-]{0,62}$")]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _RoleSpec(_Strict):
    name: Name
    description: str = ""
    includes: list[str] = Field(default_factory=list)
    assignable_by: list[str] = Field(default_factory=list)


class _ZoneSpec(_Strict):
    id: Name
    name: str = ""
    parent: Name | None = None
    archives: list[str] = Field(default_factory=list)
    roles: list[_RoleSpec] = Field(default_factory=list)


class _ZonesFile(_Strict):
    zones: list[_ZoneSpec] = Field(min_length=1)


def load_zones(path: Path) -> ZoneTree:
    """Load and validate ``zones.yaml``; raises ``ConfigError`` listing every problem."""
    data, locator = yamlfile.load(path)
    return parse_zones(data, locator)


def parse_zones(data: object, locator: yamlfile.Locator) -> ZoneTree:
    spec = yamlfile.validate(_ZonesFile, data, locator)
    problems: list[Problem] = []
    seen_zones: dict[str, int] = {}
    for i, z in enumerate(spec.zones):
        if z.id in seen_zones:
            problems.append(locator.problem(("zones", i, "id"), f"duplicate zone {z.id!r}", "a unique zone id"))
        seen_zones.setdefault(z.id, i)
    for i, z in enumerate(spec.zones):
        if z.parent is not None and z.parent not in seen_zones:
            problems.append(
                locator.problem(("zones", i, "parent"), f"unknown parent zone {z.parent!r}", "one of the zone ids")
            )
    problems.extend(_cycles(spec, locator))
    zones, role_problems = _roles(spec, locator)
    problems.extend(role_problems)
    if not role_problems:
        problems.extend(_role_cycles(spec, zones, locator))
    if problems:
        raise ConfigError(problems)
    return ZoneTree.build(zones)


def _cycles(spec: _ZonesFile, locator: yamlfile.Locator) -> list[Problem]:
    parent = {z.id: z.parent for z in spec.zones}
    index = {z.id: i for i, z in enumerate(spec.zones)}
    reported: set[str] = set()
    problems = []
    for start in parent:
        path: list[str] = []
        current: str | None = start
        while current is not None and current in parent and current not in path:
            path.append(current)
            current = parent[current]
        if current is not None and current in path:
            cycle = path[path.index(current) :]
            if not reported.intersection(cycle):
                reported.update(cycle)
                loop = " -> ".join([*cycle, current])
                problems.append(
                    locator.problem(("zones", index[current], "parent"), f"cycle in the zone tree: {loop}", "a tree")
                )
    return problems


def _role_cycles(spec: _ZonesFile, zones: list[Zone], locator: yamlfile.Locator) -> list[Problem]:
    """A role that includes itself, directly or through junior roles, is a mistake."""
    includes = {r.ref: r.includes for z in zones for r in z.roles}
    where = {
        RoleRef(z.id, r.name): ("zones", i, "roles", j, "includes")
        for i, z in enumerate(spec.zones)
        for j, r in enumerate(z.roles)
    }
    problems: list[Problem] = []
    reported: set[RoleRef] = set()
    for start, juniors in includes.items():
        stack, seen = list(juniors), set()
        while stack:
            current = stack.pop()
            if current == start and start not in reported:
                reported.add(start)
                problems.append(
                    locator.problem(where[start], f"role {start} includes itself", "junior roles without a cycle")
                )
                break
            if current not in seen:
                seen.add(current)
                stack.extend(includes.get(current, ()))
    return problems


def _roles(spec: _ZonesFile, locator: yamlfile.Locator) -> tuple[list[Zone], list[Problem]]:
    problems: list[Problem] = []
    declared: set[RoleRef] = set()
    for i, z in enumerate(spec.zones):
        for j, r in enumerate(z.roles):
            ref = RoleRef(z.id, r.name)
            if ref in declared:
                problems.append(
                    locator.problem(("zones", i, "roles", j, "name"), f"duplicate role {r.name!r} in zone {z.id!r}")
                )
            declared.add(ref)
    zones = []
    for i, z in enumerate(spec.zones):
        roles = []
        for j, r in enumerate(z.roles):
            refs = {}
            for field in ("includes", "assignable_by"):
                refs[field] = _refs(
                    getattr(r, field), z.id, declared, locator, ("zones", i, "roles", j, field), problems
                )
            roles.append(Role(RoleRef(z.id, r.name), r.description, refs["includes"], refs["assignable_by"]))
        zones.append(Zone(z.id, z.name or z.id, z.parent, tuple(z.archives), tuple(roles)))
    return zones, problems


def _refs(
    names: list[str],
    zone: str,
    declared: set[RoleRef],
    locator: yamlfile.Locator,
    path: tuple[str | int, ...],
    problems: list[Problem],
) -> tuple[RoleRef, ...]:
    out = []
    for k, name in enumerate(names):
        try:
            ref = RoleRef.parse(name, zone)
        except ValueError as exc:
            problems.append(locator.problem((*path, k), str(exc), "role or zone/role"))
            continue
        if ref not in declared:
            problems.append(locator.problem((*path, k), f"unknown role {str(ref)!r}", "a role declared in zones.yaml"))
            continue
        out.append(ref)
    return tuple(out)


def scaffold(directory: Path, *, force: bool = False) -> None:
    """Write a new site into ``directory`` from the commented template."""
    if directory.exists() and any(directory.iterdir()) and not force:
        raise ConfigError(Problem(directory, "directory is not empty; use --force to write into it anyway"))
    directory.mkdir(parents=True, exist_ok=True)
    with resources.as_file(resources.files("pacsguard") / TEMPLATE) as template:
        for item in sorted(template.rglob("*")):
            if "__pycache__" in item.parts:
                continue
            target = directory / item.relative_to(template)
            if item.is_dir():
                target.mkdir(exist_ok=True)
            elif not target.exists() or force:
                shutil.copyfile(item, target)
    (directory / "pki").chmod(0o700)
    # The audit log signs its tree heads from the very first event.
    signing_key = directory / "pki" / "signing-key.pem"
    if not signing_key.exists():
        pki.make_signing_key(signing_key)
