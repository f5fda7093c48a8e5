"""Compile a ``PolicySet`` (and the agreements) once into indexed lookup tables.

Rules are indexed by (study zone, action, role): a rule of zone Z is filed under every zone
of Z's sub-tree, which is how a sub-zone inherits its parent's rules. Role inclusion is
pre-expanded per role, and each rule keeps only the condition checks it needs.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

from pacsguard.domain import Action, RoleRef, ZoneTree
from pacsguard.policy.model import Check, PolicySet, Rule
from pacsguard.policy.terms import AgreementTerms as Agreement

__all__ = ["CompiledPolicy", "CompiledRule", "compile_policy"]

Key = tuple[str, Action, RoleRef]


@dataclass(frozen=True, slots=True)
class CompiledRule:
    """A rule with its condition checks ready to run."""

    rule: Rule
    checks: tuple[Check, ...]
    needs_when: bool


@dataclass(frozen=True)
class CompiledPolicy:
    """The indexed, immutable form of a site's policy; built by ``compile_policy``."""

    zones: ZoneTree
    policy: PolicySet
    agreements: tuple[Agreement, ...]
    tz: ZoneInfo
    permits: Mapping[Key, tuple[CompiledRule, ...]]
    forbids: Mapping[Key, tuple[CompiledRule, ...]]
    permits_by_zone_action: Mapping[tuple[str, Action], tuple[CompiledRule, ...]]
    expand: Mapping[RoleRef, frozenset[RoleRef]]
    root: Mapping[str, str]
    mapped: Mapping[tuple[str, RoleRef], frozenset[RoleRef]] = field(default_factory=dict)

    def expanded(self, role: RoleRef) -> frozenset[RoleRef]:
        """The role and every junior role it includes."""
        found = self.expand.get(role)
        return found if found is not None else frozenset((role,))

    def map_roles(self, agreement: Agreement, roles: Iterable[RoleRef]) -> frozenset[RoleRef]:
        """The other party's roles (expanded) that ``roles`` map to under ``agreement``."""
        out: set[RoleRef] = set()
        for role in roles:
            found = self.mapped.get((agreement.id, role))
            if found:
                out |= found
        return frozenset(out)

    def same_organisation(self, zone_a: str, zone_b: str) -> bool:
        """True when both zones lie under the same root zone (no agreement is needed)."""
        root_a = self.root.get(zone_a)
        return root_a is not None and root_a == self.root.get(zone_b)

    def agreements_between(self, subject_zone: str, study_zone: str) -> list[Agreement]:
        """Agreements whose parties cover the subject's zone on one side and the study's on the other."""
        out = []
        for agreement in self.agreements:
            a, b = agreement.parties
            if (self._within(subject_zone, a) and self._within(study_zone, b)) or (
                self._within(subject_zone, b) and self._within(study_zone, a)
            ):
                out.append(agreement)
        return out

    def _within(self, zone: str, ancestor: str) -> bool:
        return zone in self.zones and self.zones.is_within(zone, ancestor)


def compile_policy(zones: ZoneTree, policy: PolicySet, agreements: Iterable[Agreement] = ()) -> CompiledPolicy:
    """Index ``policy`` for fast decisions; pure and deterministic."""
    permits: dict[Key, list[CompiledRule]] = defaultdict(list)
    forbids: dict[Key, list[CompiledRule]] = defaultdict(list)
    by_zone_action: dict[tuple[str, Action], list[CompiledRule]] = defaultdict(list)
    for rule in policy.rules:
        compiled = CompiledRule(rule, rule.conditions.checks(), rule.conditions.needs_when)
        target = permits if rule.permits else forbids
        for zone in zones.subtree(rule.zone):
            for action in rule.actions:
                if rule.permits:
                    by_zone_action[(zone, action)].append(compiled)
                for role in rule.roles:
                    target[(zone, action, role)].append(compiled)
    expand = {ref: zones.expand_role(ref) for ref in zones.roles}
    agreement_list = tuple(agreements)
    mapped: dict[tuple[str, RoleRef], frozenset[RoleRef]] = {}
    for agreement in agreement_list:
        for source, targets in agreement.role_mapping.items():
            mapped[(agreement.id, source)] = frozenset(r for t in targets for r in expand.get(t, frozenset((t,))))
    return CompiledPolicy(
        zones=zones,
        policy=policy,
        agreements=agreement_list,
        tz=ZoneInfo(policy.timezone),
        permits={k: tuple(v) for k, v in permits.items()},
        forbids={k: tuple(v) for k, v in forbids.items()},
        permits_by_zone_action={k: tuple(v) for k, v in by_zone_action.items()},
        expand=expand,
        root={z: zones.ancestors(z)[-1] for z in zones.zones},
        mapped=mapped,
    )
