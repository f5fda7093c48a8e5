"""The three engines under test, each built from the same ``Workload``."""

from __future__ import annotations

import json
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import casbin
import cedarpy
import yaml
from workload import ZONES, Ask, Workload, juniors, role_names

from pacsguard.clock import FakeClock
from pacsguard.domain import (
    AccessRequest,
    Action,
    AuthStrength,
    HeldRole,
    Purpose,
    RequestContext,
    Resource,
    Role,
    RoleRef,
    Sensitivity,
    Subject,
    Zone,
    ZoneTree,
)
from pacsguard.domain.access import RoleSource
from pacsguard.policy import DecisionPoint, compile_policy, load_policies


class Ours:
    name = "pacsguard"

    def __init__(self, work: Workload, tmp: Path) -> None:
        tree = ZoneTree.build(
            Zone(
                z,
                z,
                roles=tuple(
                    Role(RoleRef(z, r), includes=tuple(RoleRef(z, j) for j in juniors(r))) for r in role_names()
                ),
            )
            for z in ZONES
        )
        directory = tmp / "policies"
        directory.mkdir()
        for zone in ZONES:
            rules = [_yaml_rule(r) for r in work.rules if r.zone == zone]
            (directory / f"{zone}.yaml").write_text(yaml.safe_dump({"zone": zone, "rules": rules}, sort_keys=False))
        self.point = DecisionPoint(compile_policy(tree, load_policies(directory, tree)), FakeClock())
        self.subjects = {
            u.id: Subject(
                u.id,
                u.zone,
                tuple(HeldRole(RoleRef(u.zone, r), RoleSource.ASSIGNMENT, f"a-{u.id}") for r in u.roles),
                AuthStrength.PASSWORD,
            )
            for u in work.users
        }
        self.resources = {
            s.id: Resource(s.zone, s.id, f"p-{s.id}", Sensitivity(s.sensitivity), s.modality) for s in work.studies
        }

    def prepare(self, asks: Sequence[Ask]) -> list[AccessRequest]:
        return [
            AccessRequest(
                self.subjects[a.user.id],
                Action(a.action),
                self.resources[a.study.id],
                RequestContext(Purpose(a.purpose)),
            )
            for a in asks
        ]

    def one(self, request: Any) -> bool:
        return self.point.decide(request).permitted

    def many(self, requests: Sequence[Any]) -> list[bool]:
        return [d.permitted for d in self.point.decide_many(requests)]


def _yaml_rule(r: Any) -> dict[str, Any]:
    when: dict[str, Any] = {"max_sensitivity": r.max_sensitivity}
    if r.purpose:
        when["purpose"] = [r.purpose]
    if r.modality:
        when["modality"] = [r.modality]
    return {"id": r.id, "effect": r.effect, "roles": [r.role], "actions": [r.action], "when": when}


CASBIN_MODEL = """[request_definition]
r = sub, dom, act, sens, purpose, modality

[policy_definition]
p = sub, dom, act, max_sens, purpose, modality, eft

[role_definition]
g = _, _, _

[policy_effect]
e = some(where (p.eft == allow)) && !some(where (p.eft == deny))

[matchers]
m = g(r.sub, p.sub, r.dom) && r.dom == p.dom && r.act == p.act && r.sens <= p.max_sens && \
(p.purpose == "*" || r.purpose == p.purpose) && (p.modality == "*" || r.modality == p.modality)
"""


class Casbin:
    """RBAC with domains (the study's zone) plus ABAC conditions in the matcher; deny overrides.
    Sensitivity is one digit, so comparing the strings compares the numbers."""

    name = "casbin"

    def __init__(self, work: Workload, tmp: Path) -> None:
        (tmp / "model.conf").write_text(CASBIN_MODEL)
        lines = []
        for r in work.rules:
            eft = "allow" if r.effect == "permit" else "deny"
            fields = (r.role, r.zone, r.action, r.max_sensitivity, r.purpose or "*", r.modality or "*", eft)
            lines.append("p, " + ", ".join(str(f) for f in fields))
        for zone in ZONES:
            lines.extend(f"g, {role}, {j}, {zone}" for role in role_names() for j in juniors(role))
        lines.extend(f"g, {u.id}, {role}, {u.zone}" for u in work.users for role in u.roles)
        (tmp / "policy.csv").write_text("\n".join(lines) + "\n")
        self.enforcer = casbin.Enforcer(str(tmp / "model.conf"), str(tmp / "policy.csv"))

    def prepare(self, asks: Sequence[Ask]) -> list[list[str]]:
        return [
            [a.user.id, a.study.zone, a.action, str(a.study.sensitivity), a.purpose, a.study.modality] for a in asks
        ]

    def one(self, request: Any) -> bool:
        return bool(self.enforcer.enforce(*request))

    def many(self, requests: Sequence[Any]) -> list[bool]:
        return [bool(x) for x in self.enforcer.batch_enforce(list(requests))]


class Cedar:
    """Cedar policies parsed once into a ``PolicySet``; users, roles (juniors as parents) and
    studies parsed once into an ``Entities`` handle."""

    name = "cedar"

    def __init__(self, work: Workload, tmp: Path) -> None:
        self.policies = cedarpy.PolicySet.from_str("\n".join(_cedar_rule(r) for r in work.rules) or "")
        entities: list[dict[str, Any]] = []
        for zone in ZONES:
            for role in role_names():
                parents = [{"type": "Role", "id": f"{zone}/{j}"} for j in juniors(role)]
                entities.append({"uid": {"type": "Role", "id": f"{zone}/{role}"}, "attrs": {}, "parents": parents})
        for u in work.users:
            parents = [{"type": "Role", "id": f"{u.zone}/{r}"} for r in u.roles]
            entities.append({"uid": {"type": "User", "id": u.id}, "attrs": {}, "parents": parents})
        for s in work.studies:
            attrs = {"zone": s.zone, "sensitivity": s.sensitivity, "modality": s.modality}
            entities.append({"uid": {"type": "Study", "id": s.id}, "attrs": attrs, "parents": []})
        self.entities = cedarpy.Entities.from_json_str(json.dumps(entities))

    def prepare(self, asks: Sequence[Ask]) -> list[dict[str, Any]]:
        return [
            {
                "principal": f'User::"{a.user.id}"',
                "action": f'Action::"{a.action}"',
                "resource": f'Study::"{a.study.id}"',
                "context": {"purpose": a.purpose},
            }
            for a in asks
        ]

    def one(self, request: Any) -> bool:
        return bool(cedarpy.is_authorized(request, self.policies, self.entities).allowed)

    def many(self, requests: Sequence[Any]) -> list[bool]:
        return [r.allowed for r in cedarpy.is_authorized_batch(list(requests), self.policies, self.entities)]


def _cedar_rule(r: Any) -> str:
    conditions = [f'resource.zone == "{r.zone}"', f"resource.sensitivity <= {r.max_sensitivity}"]
    if r.purpose:
        conditions.append(f'context.purpose == "{r.purpose}"')
    if r.modality:
        conditions.append(f'resource.modality == "{r.modality}"')
    return (
        f'@id("{r.id}")\n{r.effect}(principal in Role::"{r.zone}/{r.role}", action == Action::"{r.action}", resource)\n'
        f"when {{ {' && '.join(conditions)} }};"
    )


ENGINES = (Ours, Casbin, Cedar)


def tempdir() -> tempfile.TemporaryDirectory[str]:
    return tempfile.TemporaryDirectory(prefix="pacsguard-bench-")
