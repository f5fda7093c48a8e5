"""Property tests: deny overrides against a brute-force oracle, sub-zone monotonicity,
expired rights never grant, consent passes only through break-glass where allowed,
break-glass needs a reason, and ``decide_many`` equals ``decide`` one by one."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from pacsguard.clock import FakeClock
from pacsguard.domain import (
    AccessRequest,
    Action,
    BreakGlassGrant,
    ConsentDirective,
    ConsentKind,
    Effect,
    Purpose,
    RequestContext,
    Resource,
    RoleRef,
    Sensitivity,
    Subject,
    Validity,
    ZoneTree,
)
from pacsguard.policy import (
    BreakGlassRefusal,
    Conditions,
    DecisionPoint,
    PolicySet,
    Rule,
    compile_policy,
    request_break_glass,
)
from tests.unit.policy.helpers import build_zones, held

ZONES: ZoneTree = build_zones()
NOW = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
ROLES = sorted(ZONES.roles)
ACTIONS = [Action.QUERY, Action.READ, Action.EXPORT, Action.DELETE, Action.BREAK_GLASS]

ANY_ZONE = st.sampled_from(sorted(ZONES.zones))
conditions = st.builds(
    Conditions,
    max_sensitivity=st.none() | st.sampled_from(Sensitivity),
    min_sensitivity=st.none() | st.sampled_from(Sensitivity),
    modalities=st.none() | st.sets(st.sampled_from(["CT", "MR", "US"]), min_size=1).map(frozenset),
    purposes=st.none() | st.sets(st.sampled_from(Purpose), min_size=1).map(frozenset),
)


@st.composite
def rules(draw: st.DrawFn, zone: st.SearchStrategy[str] = ANY_ZONE) -> Rule:
    effect = draw(st.sampled_from(["permit", "forbid"]))
    return Rule(
        id=f"r{draw(st.integers(0, 10**9))}",
        zone=draw(zone),
        effect=effect,
        roles=frozenset(draw(st.sets(st.sampled_from(ROLES), min_size=1, max_size=3))),
        actions=frozenset(draw(st.sets(st.sampled_from(ACTIONS), min_size=1, max_size=3))),
        conditions=draw(conditions),
        absolute=effect == "forbid" and draw(st.booleans()),
    )


def unique(rs: list[Rule]) -> tuple[Rule, ...]:
    return tuple(
        Rule(**{**{f: getattr(r, f) for f in Rule.__dataclass_fields__}, "id": f"r{i}"}) for i, r in enumerate(rs)
    )


@st.composite
def requests(draw: st.DrawFn, consents: bool = False) -> AccessRequest:
    roles = draw(st.lists(st.sampled_from(ROLES), min_size=0, max_size=3))
    home = draw(st.sampled_from(sorted(ZONES.zones)))
    subject = Subject("alice", home, tuple(held(str(r)) for r in roles))
    resource = Resource(
        draw(st.sampled_from(sorted(ZONES.zones))),
        "1.2.3",
        "p-1",
        draw(st.sampled_from(Sensitivity)),
        draw(st.sampled_from(["CT", "MR", "US", None])),
    )
    context = RequestContext(draw(st.sampled_from(Purpose)))
    directives: tuple[ConsentDirective, ...] = ()
    if consents:
        directives = (
            ConsentDirective(
                "c-1",
                "p-1",
                draw(st.sampled_from(ConsentKind)),
                zones=frozenset(draw(st.sets(st.sampled_from(sorted(ZONES.zones)), max_size=2))),
                purposes=frozenset(draw(st.sets(st.sampled_from(Purpose), max_size=2))),
                allow_emergency=draw(st.booleans()),
            ),
        )
    return AccessRequest(subject, draw(st.sampled_from(ACTIONS)), resource, context, directives)


def point_of(rs: tuple[Rule, ...]) -> DecisionPoint:
    return DecisionPoint(compile_policy(ZONES, PolicySet(rs)), FakeClock(NOW))


def oracle(rs: tuple[Rule, ...], request: AccessRequest) -> Effect:
    """Brute force over every rule: deny overrides, default deny (same organisation only)."""
    roles = frozenset(r for h in request.subject.roles for r in ZONES.expand_role(h.role))

    def applies(rule: Rule) -> bool:
        return (
            ZONES.is_within(request.resource.zone, rule.zone)
            and request.action in rule.actions
            and bool(rule.roles & roles)
            and rule.conditions.lacks(request, None) is None
        )

    if any(applies(r) for r in rs if not r.permits):
        return Effect.DENY
    return Effect.PERMIT if any(applies(r) for r in rs if r.permits) else Effect.DENY


def same_org(request: AccessRequest) -> bool:
    return ZONES.ancestors(request.subject.zone)[-1] == ZONES.ancestors(request.resource.zone)[-1]


@settings(max_examples=120, deadline=None)
@given(st.lists(rules(), max_size=12).map(unique), requests())
def test_decisions_match_deny_overrides_oracle(rs: tuple[Rule, ...], request: AccessRequest) -> None:
    decision = point_of(rs).decide(request)
    expected = oracle(rs, request) if same_org(request) else Effect.DENY  # no agreements here
    assert decision.effect is expected


@settings(max_examples=80, deadline=None)
@given(st.lists(rules(), max_size=10).map(unique), requests(), rules())
def test_adding_a_forbid_never_widens(rs: tuple[Rule, ...], request: AccessRequest, extra: Rule) -> None:
    forbid = Rule(**{**{f: getattr(extra, f) for f in Rule.__dataclass_fields__}, "effect": "forbid", "id": "extra"})
    if not point_of(rs).decide(request).permitted:
        assert not point_of((*rs, forbid)).decide(request).permitted


@settings(max_examples=100, deadline=None)
@given(
    st.lists(rules(st.just("north")), max_size=8),
    st.lists(rules(st.just("north-cardiology")), max_size=8),
    requests(),
)
def test_subzone_never_permits_more_than_its_parent(
    parent: list[Rule], child: list[Rule], request: AccessRequest
) -> None:
    rs = unique(parent + child)
    parent_rules = tuple(r for r in rs if r.zone == "north")
    for zone in ("north", "north-cardiology"):
        at_zone = AccessRequest(
            request.subject,
            request.action,
            Resource(zone, "1.2.3", "p-1", request.resource.sensitivity, request.resource.modality),
            request.context,
        )
        parent_decision = point_of(parent_rules).decide(at_zone)
        full = point_of(rs).decide(at_zone)
        if parent_decision.effect is Effect.DENY and parent_decision.rule_ids:  # the parent forbids
            assert full.effect is Effect.DENY
            assert set(parent_decision.rule_ids) <= set(full.rule_ids)


@settings(max_examples=80, deadline=None)
@given(st.lists(rules(), max_size=12).map(unique), requests(), st.integers(1, 10_000), st.booleans())
def test_expired_or_future_roles_never_grant(
    rs: tuple[Rule, ...], request: AccessRequest, minutes: int, past: bool
) -> None:
    span = timedelta(minutes=minutes)
    validity = Validity(NOW - 2 * span, NOW - span) if past else Validity(NOW + span, NOW + 2 * span)
    roles = tuple(
        held(str(h.role), validity=validity, actions=set(ACTIONS) if minutes % 2 else None)
        for h in request.subject.roles
    )
    subject = Subject("alice", request.subject.zone, roles)
    decision = point_of(rs).decide(AccessRequest(subject, request.action, request.resource, request.context))
    assert decision.effect is Effect.DENY


@settings(max_examples=100, deadline=None)
@given(st.lists(rules(), max_size=12).map(unique), requests(consents=True), st.booleans())
def test_consent_forbids_pass_only_through_break_glass_where_allowed(
    rs: tuple[Rule, ...], request: AccessRequest, with_grant: bool
) -> None:
    from pacsguard.policy import consent_forbids

    grant = BreakGlassGrant(
        "bg", "alice", "reason given here", Validity(NOW, NOW + timedelta(hours=1)), ROLES[0], "p-1"
    )
    context = RequestContext(request.context.purpose, None, grant if with_grant else None)
    asked = AccessRequest(request.subject, request.action, request.resource, context, request.consents)
    decision = point_of(rs).decide(asked)
    forbidding = consent_forbids(request.consents, request, NOW, ZONES)
    if forbidding and decision.permitted:
        assert with_grant
        assert all(d.allow_emergency for d in forbidding)
        assert decision.break_glass == "bg"


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.sampled_from("ab \t\n"), max_size=12))
def test_break_glass_without_a_reason_is_refused(reason: str) -> None:
    glass = Rule("g", "north", "permit", frozenset({RoleRef("north", "referrer")}), frozenset({Action.BREAK_GLASS}))
    subject = Subject("alice", "north", (held("north/referrer"),))
    result = request_break_glass(point_of((glass,)), subject, Resource("north", "1.2.3", "p-1"), reason, NOW)
    if len(reason.split()) < 3:
        assert isinstance(result, BreakGlassRefusal)
        assert result.code == "reason-required"
    else:
        assert isinstance(result, BreakGlassGrant)


@settings(max_examples=40, deadline=None)
@given(st.lists(rules(), max_size=12).map(unique), st.lists(requests(consents=True), max_size=20))
def test_decide_many_equals_decide(rs: tuple[Rule, ...], reqs: list[AccessRequest]) -> None:
    point = point_of(rs)
    assert point.decide_many(reqs) == [point.decide(r) for r in reqs]


@settings(max_examples=100, deadline=None)
@given(st.lists(rules(), max_size=12).map(unique), requests(), st.sampled_from(["expired", "future", "suspended"]))
def test_agreements_out_of_force_never_grant(rs: tuple[Rule, ...], request: AccessRequest, how: str) -> None:
    from pacsguard.agreements import Agreement, AgreementState

    day = timedelta(days=1)
    validity = {"expired": Validity(NOW - 9 * day, NOW - day), "future": Validity(NOW + day, None)}.get(how, Validity())
    everything = {
        role: tuple(other for other in ROLES if ZONES.ancestors(other.zone)[-1] != ZONES.ancestors(role.zone)[-1])
        for role in ROLES
    }
    agreement = Agreement(
        "ns",
        ("north", "south"),
        AgreementState.SUSPENDED if how == "suspended" else AgreementState.ACTIVE,
        validity,
        frozenset(Action),
        Sensitivity.TOP_SECRET,
        frozenset(Purpose),
        everything,
    )
    point = DecisionPoint(compile_policy(ZONES, PolicySet(rs), [agreement]), FakeClock(NOW))
    decision = point.decide(request)
    if not same_org(request):
        assert decision.effect is Effect.DENY
        assert decision.agreement is None
