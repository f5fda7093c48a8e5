"""Consent directives forbid; only break-glass passes them, and only where they allow it.
Break-glass needs a role allowing it and a reason, is time-boxed, and never passes an
absolute forbid."""

from __future__ import annotations

from datetime import timedelta

from pacsguard.clock import FakeClock
from pacsguard.domain import (
    Action,
    BreakGlassGrant,
    ConsentDirective,
    ConsentKind,
    Effect,
    Obligation,
    Purpose,
    Resource,
    Sensitivity,
    Subject,
    Validity,
)
from pacsguard.policy import BreakGlassRefusal, DecisionPoint, request_break_glass
from tests.unit.policy.conftest import MakePoint
from tests.unit.policy.helpers import held, request

POLICY = """zone: north
rules:
  - id: read
    effect: permit
    roles: [referrer]
    actions: [query, read]
  - id: glass
    effect: permit
    roles: [referrer]
    actions: [break_glass]
  - id: no-secret
    effect: forbid
    roles: [referrer]
    actions: [read]
    when: {min_sensitivity: secret}
  - id: never-top-secret
    effect: forbid
    roles: [referrer]
    actions: [read]
    when: {min_sensitivity: top_secret}
    absolute: true
"""


def directive(kind: ConsentKind, *, emergency: bool = True, **kwargs: object) -> ConsentDirective:
    return ConsentDirective("c-1", "p-1", kind, allow_emergency=emergency, **kwargs)  # type: ignore[arg-type]


def grant_for(point: DecisionPoint, clock: FakeClock) -> BreakGlassGrant:
    subject = Subject("alice", "north", (held("north/referrer"),))
    result = request_break_glass(
        point, subject, Resource("north", "1.2.3", "p-1"), "patient unconscious in the emergency room", clock.now()
    )
    assert isinstance(result, BreakGlassGrant)
    return result


def test_consent_kinds(make_point: MakePoint) -> None:
    point = make_point({"north": POLICY})
    only_south = directive(ConsentKind.ONLY_ZONES, zones=frozenset({"south"}))
    not_north = directive(ConsentKind.DENY_ZONES, zones=frozenset({"north"}))
    no_research = directive(ConsentKind.DENY_PURPOSES, purposes=frozenset({Purpose.RESEARCH}))
    assert point.decide(request("north/referrer", consents=(only_south,))).consent == ("c-1",)
    assert not point.decide(request("north/referrer", zone="north-cardiology", consents=(not_north,))).permitted
    assert point.decide(request("north/referrer", consents=(no_research,))).permitted
    assert not point.decide(request("north/referrer", purpose=Purpose.RESEARCH, consents=(no_research,))).permitted
    other_patient = ConsentDirective("c-2", "p-2", ConsentKind.DENY_ZONES, zones=frozenset({"north"}))
    assert point.decide(request("north/referrer", consents=(other_patient,))).permitted


def test_consent_outside_its_validity_does_not_forbid(make_point: MakePoint, clock: FakeClock) -> None:
    point = make_point({"north": POLICY})
    lapsed = directive(
        ConsentKind.DENY_ZONES,
        zones=frozenset({"north"}),
        validity=Validity(clock.now() - timedelta(days=9), clock.now() - timedelta(days=1)),
    )
    assert point.decide(request("north/referrer", consents=(lapsed,))).permitted


def test_break_glass_passes_consent_that_allows_emergency(make_point: MakePoint, clock: FakeClock) -> None:
    point = make_point({"north": POLICY})
    grant = grant_for(point, clock)
    blocked = directive(ConsentKind.DENY_ZONES, zones=frozenset({"north"}))
    decision = point.decide(request("north/referrer", consents=(blocked,), grant=grant))
    assert decision.permitted
    assert decision.break_glass == grant.id
    assert {Obligation("alert", "security-officer"), Obligation("review", "required")} <= set(decision.obligations)
    closed = directive(ConsentKind.DENY_ZONES, zones=frozenset({"north"}), emergency=False)
    refused = point.decide(request("north/referrer", consents=(closed,), grant=grant))
    assert refused.effect is Effect.DENY
    assert refused.consent == ("c-1",)


def test_break_glass_passes_forbid_but_never_absolute(make_point: MakePoint, clock: FakeClock) -> None:
    point = make_point({"north": POLICY})
    grant = grant_for(point, clock)
    assert not point.decide(request("north/referrer", sensitivity=Sensitivity.SECRET)).permitted
    passed = point.decide(request("north/referrer", sensitivity=Sensitivity.SECRET, grant=grant))
    assert passed.permitted
    assert passed.rule_ids == ("no-secret",)
    absolute = point.decide(request("north/referrer", sensitivity=Sensitivity.TOP_SECRET, grant=grant))
    assert absolute.effect is Effect.DENY
    assert "never-top-secret" in absolute.rule_ids


def test_break_glass_is_time_boxed_and_bound(make_point: MakePoint, clock: FakeClock) -> None:
    point = make_point({"north": POLICY})
    grant = grant_for(point, clock)
    assert grant.validity.not_after == clock.now() + timedelta(hours=1)
    secret = request("north/referrer", sensitivity=Sensitivity.SECRET, grant=grant)
    clock.advance(minutes=61)
    assert not point.decide(secret).permitted
    other = request("north/referrer", sensitivity=Sensitivity.SECRET, grant=grant, principal="mallory")
    assert not point.decide(other, grant.validity.not_before).permitted
    export = request("north/referrer", action=Action.EXPORT, grant=grant)
    assert not point.decide(export, grant.validity.not_before).permitted


def test_break_glass_refusals(make_point: MakePoint, clock: FakeClock) -> None:
    point = make_point({"north": POLICY})
    subject = Subject("alice", "north", (held("north/referrer"),))
    resource = Resource("north", "1.2.3", "p-1")
    for reason in ("", "   ", "urgent", "very urgent"):
        refusal = request_break_glass(point, subject, resource, reason, clock.now())
        assert isinstance(refusal, BreakGlassRefusal)
        assert refusal.code == "reason-required"
    officer = Subject("bob", "north", (held("north/security-officer"),))
    refusal = request_break_glass(point, officer, resource, "patient is bleeding out now", clock.now())
    assert isinstance(refusal, BreakGlassRefusal)
    assert refusal.code == "not-allowed"
    too_long = request_break_glass(point, subject, resource, "a b c d", clock.now(), duration=timedelta(days=2))
    assert isinstance(too_long, BreakGlassRefusal)
    patient = request_break_glass(point, subject, resource, "a b c d", clock.now(), scope="patient")
    assert isinstance(patient, BreakGlassGrant)
    assert (patient.patient_id, patient.study_uid) == ("p-1", None)
