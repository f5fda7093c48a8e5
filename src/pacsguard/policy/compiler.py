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

from pacsguard.domain import Action, AuthStrength, Purpose, RoleRef, Sensitivity, ZoneTree
from pacsguard.domain.decision import AccessRequest, ConsentState
from pacsguard.policy.model import Check, PolicySet, Rule, Test, When
from pacsguard.policy.terms import AgreementTerms as Agreement

__all__ = ["CompiledPolicy", "CompiledRule", "compile_policy"]

Key = tuple[str, Action]
ByRole = Mapping[int, tuple["CompiledRule", ...]]
# Everything a condition can test without the clock or the address: study zone, action,
# purpose, modality (None when no rule names it), sensitivity, consent state, authentication.
Facts = tuple[str, Action, Purpose, str | None, Sensitivity, ConsentState, AuthStrength]
CACHE_LIMIT = 100_000


@dataclass(frozen=True, slots=True, eq=False)
class CompiledRule:
    """A rule with its condition checks ready to run (compared by identity)."""

    rule: Rule
    checks: tuple[Check, ...]
    tests: tuple[Test, ...]
    needs_when: bool
    static_tests: tuple[Test, ...] = ()
    when_tests: tuple[Test, ...] = ()

    def failing(self, request: AccessRequest, when: When | None) -> list[Check]:
        """The checks ``request`` fails (for explanations; decisions use ``tests``)."""
        return [c for c in self.checks if not c.test(request, when)]


@dataclass(frozen=True)
class CompiledPolicy:
    """The indexed, immutable form of a site's policy; built by ``compile_policy``."""

    zones: ZoneTree
    policy: PolicySet
    agreements: tuple[Agreement, ...]
    tz: ZoneInfo
    permits: Mapping[Key, ByRole]
    forbids: Mapping[Key, ByRole]
    permits_by_zone_action: Mapping[Key, tuple[CompiledRule, ...]]
    role_ids: Mapping[RoleRef, int]
    expand: Mapping[RoleRef, frozenset[int]]
    root: Mapping[str, str]
    mapped: Mapping[tuple[str, int], frozenset[int]] = field(default_factory=dict)
    modalities: frozenset[str] = frozenset()
    # A memo of a pure function (facts, role) -> rules whose static conditions hold; it only
    # saves work, so losing it (the size cap clears it) changes no decision.
    _narrowed: dict[tuple[bool, Facts], dict[int, tuple[CompiledRule, ...]]] = field(
        default_factory=dict, compare=False, repr=False
    )

    def facts(self, request: AccessRequest) -> Facts:
        """The request's discrete attributes that rule conditions look at."""
        res = request.resource
        modality = res.modality.upper() if res.modality else None
        return (
            res.zone,
            request.action,
            request.context.purpose,
            modality if modality in self.modalities else None,
            res.sensitivity,
            res.consent,
            request.subject.auth_strength,
        )

    def candidates(self, permit: bool, facts: Facts, request: AccessRequest, role: int) -> tuple[CompiledRule, ...]:
        """The permits (or forbids) of ``role`` whose clock-free conditions hold for ``facts``;
        ``request`` must have those facts. Only clock and address tests remain to be run."""
        per_role = self._narrowed.get((permit, facts))
        if per_role is None:
            if len(self._narrowed) >= CACHE_LIMIT:
                self._narrowed.clear()
            per_role = self._narrowed[(permit, facts)] = {}
        found = per_role.get(role)
        if found is None:
            by_role = (self.permits if permit else self.forbids).get((facts[0], facts[1]))
            rules = by_role.get(role, ()) if by_role else ()
            found = per_role[role] = tuple(c for c in rules if all(t(request, None) for t in c.static_tests))
        return found

    def expanded(self, role: RoleRef) -> frozenset[int]:
        """The ids of the role and of every junior role it includes (empty for an unknown role)."""
        return self.expand.get(role, frozenset())

    def role_id(self, role: RoleRef) -> int:
        """The integer the index uses for ``role``; -1 for a role no rule or zone knows."""
        return self.role_ids.get(role, -1)

    def map_roles(self, agreement: Agreement, roles: Iterable[int]) -> frozenset[int]:
        """The other party's roles (expanded ids) that ``roles`` map to under ``agreement``."""
        out: set[int] = set()
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
    agreement_list = tuple(agreements)
    known = set(zones.roles) | {r for rule in policy.rules for r in rule.roles}
    for agreement in agreement_list:
        known |= set(agreement.role_mapping) | {t for ts in agreement.role_mapping.values() for t in ts}
    role_ids = {ref: i for i, ref in enumerate(sorted(known))}
    permits: dict[Key, dict[int, list[CompiledRule]]] = defaultdict(lambda: defaultdict(list))
    forbids: dict[Key, dict[int, list[CompiledRule]]] = defaultdict(lambda: defaultdict(list))
    by_zone_action: dict[Key, list[CompiledRule]] = defaultdict(list)
    for rule in policy.rules:
        checks = rule.conditions.checks()
        compiled = CompiledRule(
            rule,
            checks,
            tuple(c.test for c in checks),
            rule.conditions.needs_when,
            tuple(c.test for c in checks if not c.needs_when),
            tuple(c.test for c in checks if c.needs_when),
        )
        target = permits if rule.permits else forbids
        for zone in zones.subtree(rule.zone) if rule.zone in zones else [rule.zone]:
            for action in rule.actions:
                if rule.permits:
                    by_zone_action[(zone, action)].append(compiled)
                for role in rule.roles:
                    target[(zone, action)][role_ids[role]].append(compiled)
    expand = {ref: frozenset(role_ids[r] for r in zones.expand_role(ref) if r in role_ids) for ref in known}
    mapped: dict[tuple[str, int], frozenset[int]] = {}
    for agreement in agreement_list:
        for source, targets in agreement.role_mapping.items():
            mapped[(agreement.id, role_ids[source])] = frozenset(i for t in targets for i in expand[t])
    return CompiledPolicy(
        zones=zones,
        policy=policy,
        agreements=agreement_list,
        tz=ZoneInfo(policy.timezone),
        permits=_freeze(permits),
        forbids=_freeze(forbids),
        permits_by_zone_action={k: tuple(v) for k, v in by_zone_action.items()},
        role_ids=role_ids,
        expand=expand,
        root={z: zones.ancestors(z)[-1] for z in zones.zones},
        mapped=mapped,
        modalities=frozenset(m for rule in policy.rules for m in rule.conditions.modalities or ()),
    )


def _freeze(index: dict[Key, dict[int, list[CompiledRule]]]) -> dict[Key, ByRole]:
    return {key: {role: tuple(rules) for role, rules in by_role.items()} for key, by_role in index.items()}
