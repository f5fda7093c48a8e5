"""The decision point: ``decide(request) -> Decision`` over a compiled policy.

Combining is deny-overrides: any matching forbid (a rule or a patient's directive) denies;
otherwise a matching permit permits; with none, the answer is deny (an empty policy denies
everything). A subject of another organisation is evaluated through an agreement in force,
with its roles mapped to the study zone's roles. A break-glass grant passes ordinary
forbids and consent directives that allow emergency access, never an ``absolute`` forbid.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from pacsguard.clock import Clock
from pacsguard.domain import Action, ConsentDirective, Decision, Effect, HeldRole, Obligation, Reason
from pacsguard.domain.access import RoleSource
from pacsguard.domain.decision import AccessRequest
from pacsguard.policy.compiler import CompiledPolicy, CompiledRule, Facts
from pacsguard.policy.consent import consent_forbids
from pacsguard.policy.explain import closest_permit
from pacsguard.policy.model import When
from pacsguard.policy.terms import AgreementTerms as Agreement

__all__ = ["BREAK_GLASS_ACTIONS", "BREAK_GLASS_OBLIGATIONS", "DecisionPoint", "Grant"]

BREAK_GLASS_ACTIONS = frozenset({Action.QUERY, Action.READ})
BREAK_GLASS_OBLIGATIONS = (
    Obligation("alert", "security-officer"),
    Obligation("audit", "detailed"),
    Obligation("review", "required"),
)


@dataclass(frozen=True, slots=True)
class Grant:
    """Roles a held role brings to this request, possibly through an agreement."""

    roles: frozenset[int]
    held: HeldRole
    agreement: Agreement | None


class _Lazy:
    """Computes the local time and parsed address at most once per decision."""

    __slots__ = ("_ip", "_now", "_policy", "value")

    def __init__(self, policy: CompiledPolicy, now: datetime, ip: str | None) -> None:
        self._policy, self._now, self._ip = policy, now, ip
        self.value: When | None = None

    def get(self) -> When:
        if self.value is None:
            self.value = When.of(self._now, self._policy.tz, self._ip)
        return self.value


class DecisionPoint:
    """Pure decisions over one compiled policy; time comes from ``clock``."""

    def __init__(self, policy: CompiledPolicy, clock: Clock) -> None:
        self.policy = policy
        self.clock = clock

    def decide(self, request: AccessRequest, now: datetime | None = None) -> Decision:
        """Decide one request at ``now`` (default: the clock's time). Never raises on a deny."""
        return self._decide(request, self.clock.now() if now is None else now)

    def decide_many(self, requests: Iterable[AccessRequest], now: datetime | None = None) -> list[Decision]:
        """Decide many requests at one instant, e.g. to filter a query's results.

        Equal to ``decide`` one by one. A decision depends on the study only through its zone,
        sensitivity, modality and consent state, unless patient directives or a break-glass
        grant come with the request; so within one batch, requests that share the subject,
        action, context and those attributes share one decision.
        """
        at = self.clock.now() if now is None else now
        memo: dict[tuple[object, ...], Decision] = {}
        alive: dict[int, object] = {}  # keeps each subject alive so its id cannot be reused
        out = []
        for r in requests:
            if r.consents or r.context.break_glass is not None:
                out.append(self._decide(r, at))
                continue
            res = r.resource
            alive.setdefault(id(r.subject), r.subject)
            key = (id(r.subject), r.action, r.context, res.zone, res.sensitivity, res.modality, res.consent)
            decision = memo.get(key)
            if decision is None:
                decision = memo[key] = self._decide(r, at)
            out.append(decision)
        return out

    def _decide(self, request: AccessRequest, now: datetime) -> Decision:
        p = self.policy
        notes: list[Reason] = []
        grants, forbid_roles = self._grants(request, now, notes)
        lazy = _Lazy(p, now, request.context.ip)
        facts = p.facts(request)
        forbids = _matching(p, False, facts, forbid_roles, request, lazy) if forbid_roles else []
        permits = [(rule, g) for g in grants for rule in _matching(p, True, facts, g.roles, request, lazy)]
        consents = consent_forbids(request.consents, request, now, p.zones) if request.consents else []
        if not forbids and not consents and permits:
            return _permit(permits, notes)
        grant = request.context.break_glass
        if (
            grant is not None
            and request.action in BREAK_GLASS_ACTIONS
            and grant.covers(request.subject.principal_id, request.resource, now)
        ):
            return _break_glass(grant.id, forbids, consents, notes)
        return self._deny(request, forbids, consents, notes, lazy, grants)

    def _grants(self, request: AccessRequest, now: datetime, notes: list[Reason]) -> tuple[list[Grant], frozenset[int]]:
        p = self.policy
        subject, resource, action = request.subject, request.resource, request.action
        same = p.same_organisation(subject.zone, resource.zone)
        agreements = [] if same else self._agreements(request, now, notes)
        grants: list[Grant] = []
        forbid_roles: set[int] = set()
        for held in subject.roles:
            if not held.validity.contains(now):
                notes.append(Reason("role-not-valid", f"{held.role} ({held.source_id}) is not valid now"))
                continue
            expanded = p.expanded(held.role)
            forbid_roles |= expanded
            if held.actions is not None and action not in held.actions:
                notes.append(Reason("delegation-scope", f"{held.role} was delegated without {action.value}"))
                continue
            if same:
                grants.append(Grant(expanded, held, None))
            for agreement in agreements:
                mapped = p.map_roles(agreement, expanded)
                forbid_roles |= mapped
                if mapped:
                    grants.append(Grant(mapped, held, agreement))
        return grants, frozenset(forbid_roles)

    def _agreements(self, request: AccessRequest, now: datetime, notes: list[Reason]) -> list[Agreement]:
        usable = []
        candidates = self.policy.agreements_between(request.subject.zone, request.resource.zone)
        if not candidates:
            notes.append(
                Reason(
                    "no-agreement",
                    f"no agreement lets zone {request.subject.zone} reach studies of zone {request.resource.zone}",
                )
            )
        for agreement in candidates:
            if not agreement.in_force(now):
                notes.append(Reason("agreement-not-in-force", f"agreement {agreement.id} is not in force now"))
                continue
            lack = agreement.scope_lacks(request.action, request.resource.sensitivity, request.context.purpose)
            if lack is not None:
                notes.append(Reason("agreement-scope", f"agreement {agreement.id}: {lack}"))
                continue
            usable.append(agreement)
        return usable

    def _deny(
        self,
        request: AccessRequest,
        forbids: list[CompiledRule],
        consents: list[ConsentDirective],
        notes: list[Reason],
        lazy: _Lazy,
        grants: list[Grant],
    ) -> Decision:
        reasons = list(notes)
        reasons += [Reason("forbid", f"rule {c.rule.id} forbids this", c.rule.id) for c in forbids]
        reasons += [Reason("consent", f"consent directive {d.id} of the patient forbids this") for d in consents]
        closest, lacking = closest_permit(self.policy, request, lazy.get, grants)
        if not forbids and not consents:
            reasons.append(Reason("no-permit", "no rule permits this request (deny by default)"))
        return Decision(
            Effect.DENY,
            reasons=tuple(reasons),
            rule_ids=tuple(c.rule.id for c in forbids),
            consent=tuple(d.id for d in consents),
            closest=closest,
            lacking=tuple(lacking),
        )


def _matching(
    policy: CompiledPolicy,
    permit: bool,
    facts: Facts,
    roles: frozenset[int],
    request: AccessRequest,
    lazy: _Lazy,
) -> list[CompiledRule]:
    out: list[CompiledRule] = []
    for role in roles:
        for compiled in policy.candidates(permit, facts, request, role):
            if compiled in out:
                continue
            if compiled.when_tests:
                when = lazy.get()
                if not all(test(request, when) for test in compiled.when_tests):
                    continue
            out.append(compiled)
    return out


def _permit(permits: list[tuple[CompiledRule, Grant]], notes: list[Reason]) -> Decision:
    rule_ids: list[str] = []
    obligations: set[Obligation] = set()
    reasons = list(notes)
    for compiled, grant in permits:
        if compiled.rule.id not in rule_ids:
            rule_ids.append(compiled.rule.id)
            obligations.update(compiled.rule.obligations)
            reasons.append(
                Reason("permit", f"rule {compiled.rule.id} permits this as {grant.held.role}", compiled.rule.id)
            )
    _, first = permits[0]
    chain = first.held.chain if first.held.source is RoleSource.DELEGATION else ()
    if first.agreement is not None:
        reasons.append(Reason("agreement", f"through agreement {first.agreement.id}"))
    if chain:
        reasons.append(Reason("delegation", "delegated along " + " -> ".join(chain)))
    return Decision(
        Effect.PERMIT,
        reasons=tuple(reasons),
        obligations=tuple(sorted(obligations)),
        rule_ids=tuple(rule_ids),
        agreement=first.agreement.id if first.agreement else None,
        delegation=chain,
    )


def _break_glass(
    grant_id: str, forbids: list[CompiledRule], consents: list[ConsentDirective], notes: list[Reason]
) -> Decision:
    absolute = [c.rule.id for c in forbids if c.rule.absolute]
    closed = [d.id for d in consents if not d.allow_emergency]
    if absolute or closed:
        reasons = [
            *notes,
            *(Reason("absolute-forbid", f"rule {r} is absolute: break-glass cannot pass it", r) for r in absolute),
            *(Reason("consent-no-emergency", f"consent directive {d} allows no emergency access") for d in closed),
        ]
        return Decision(
            Effect.DENY,
            reasons=tuple(reasons),
            rule_ids=tuple(absolute),
            consent=tuple(closed),
            break_glass=grant_id,
        )
    reasons = [
        *notes,
        Reason("break-glass", f"emergency access under break-glass grant {grant_id}"),
        *(Reason("forbid-passed", f"rule {c.rule.id} passed by break-glass", c.rule.id) for c in forbids),
        *(Reason("consent-passed", f"consent directive {d.id} passed by break-glass") for d in consents),
    ]
    return Decision(
        Effect.PERMIT,
        reasons=tuple(reasons),
        obligations=BREAK_GLASS_OBLIGATIONS,
        rule_ids=tuple(c.rule.id for c in forbids),
        consent=tuple(d.id for d in consents),
        break_glass=grant_id,
    )
