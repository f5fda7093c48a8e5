"""Decisions: deny-overrides, default deny, role inclusion, inheritance, conditions, obligations,
delegation, and the explanations that come with them."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

from pacsguard.clock import FakeClock
from pacsguard.domain import AccessRequest, Action, AuthStrength, Effect, Obligation, Purpose, Sensitivity, Validity
from tests.unit.policy.conftest import MakePoint
from tests.unit.policy.helpers import at, held, request

READ = """zone: north
rules:
  - id: read
    effect: permit
    roles: [referrer]
    actions: [query, read]
"""


def test_empty_policy_denies(make_point: MakePoint) -> None:
    decision = make_point().decide(request("north/radiologist"))
    assert decision.effect is Effect.DENY
    assert decision.closest is None
    assert [r.code for r in decision.reasons] == ["no-permit"]


def test_permit_names_rule(make_point: MakePoint) -> None:
    decision = make_point({"north": READ}).decide(request("north/referrer"))
    assert decision.permitted
    assert decision.rule_ids == ("read",)


def test_role_inclusion_is_honoured(make_point: MakePoint) -> None:
    point = make_point({"north": READ})
    assert point.decide(request("north/radiologist")).permitted  # radiologist includes referrer
    assert not point.decide(request("north/security-officer")).permitted


def test_deny_overrides(make_point: MakePoint) -> None:
    forbid = (
        READ
        + "  - id: no-ct\n    effect: forbid\n    roles: [radiologist]\n    actions: [read]\n    when: {modality: CT}\n"
    )
    point = make_point({"north": forbid})
    denied = point.decide(request("north/radiologist", modality="CT"))
    assert denied.effect is Effect.DENY
    assert denied.rule_ids == ("no-ct",)
    assert point.decide(request("north/radiologist", modality="MR")).permitted
    assert point.decide(request("north/referrer", modality="CT")).permitted


def test_subzone_inherits_parent_rules(make_point: MakePoint) -> None:
    child = "zone: north-cardiology\nrules:\n  - id: echo\n    effect: permit\n"
    child += "    roles: [cardiologist]\n    actions: [read]\n"
    point = make_point({"north": READ, "cardio": child})
    assert point.decide(request("north/referrer", study_zone="north-cardiology")).rule_ids == ("read",)
    assert point.decide(request("north-cardiology/cardiologist", study_zone="north-cardiology")).permitted
    assert not point.decide(request("north-cardiology/cardiologist", study_zone="north")).permitted


def test_parent_forbid_binds_subzone(make_point: MakePoint) -> None:
    parent = READ + "  - id: no-secret\n    effect: forbid\n    roles: [referrer]\n    actions: [read]\n"
    parent += "    when: {min_sensitivity: secret}\n"
    child = "zone: north-cardiology\nrules:\n  - id: echo\n    effect: permit\n    roles: [north/referrer]\n"
    child += "    actions: [read]\n"
    point = make_point({"north": parent, "cardio": child})
    decision = point.decide(request("north/referrer", study_zone="north-cardiology", sensitivity=Sensitivity.SECRET))
    assert decision.effect is Effect.DENY
    assert decision.rule_ids == ("no-secret",)


CONDITIONS = """zone: north
timezone: Europe/Oslo
networks:
  lan: [10.1.0.0/16, "fd00::/8"]
rules:
  - id: guarded
    effect: permit
    roles: [referrer]
    actions: [read]
    when:
      subtree: [north]
      max_sensitivity: confidential
      min_sensitivity: internal
      modality: [ct, MR]
      min_auth_strength: two_factor
      network: [lan]
      purpose: [treatment]
      hours: "08:00-16:00"
      weekdays: [mon, tue, wed, thu, fri]
    obligations: {audit: detailed, notify: privacy-officer, review: required, max_duration: 1h}
"""


def test_each_condition_is_checked(make_point: MakePoint, clock: FakeClock) -> None:
    clock.set(at("2026-01-05T09:00:00+00:00"))  # a Monday, 10:00 in Oslo
    point = make_point({"north": CONDITIONS})
    ok = {"auth": AuthStrength.TWO_FACTOR, "ip": "10.1.2.3"}
    decision = point.decide(request("north/referrer", **ok))  # type: ignore[arg-type]
    assert decision.permitted
    assert decision.obligations == (
        Obligation("audit", "detailed"),
        Obligation("max_duration", "1h"),
        Obligation("notify", "privacy-officer"),
        Obligation("review", "required"),
    )
    failing = {
        "sensitivity above": request("north/referrer", sensitivity=Sensitivity.SECRET, **ok),  # type: ignore[arg-type]
        "sensitivity below": request("north/referrer", sensitivity=Sensitivity.UNCLASSIFIED, **ok),  # type: ignore[arg-type]
        "modality": request("north/referrer", modality="US", **ok),  # type: ignore[arg-type]
        "authentication": request("north/referrer", auth=AuthStrength.PASSWORD, ip="10.1.2.3"),
        "networks": request("north/referrer", auth=AuthStrength.TWO_FACTOR, ip="10.2.0.1"),
        "no address": request("north/referrer", auth=AuthStrength.TWO_FACTOR, ip="not-an-ip"),
        "purpose": request("north/referrer", purpose=Purpose.RESEARCH, **ok),  # type: ignore[arg-type]
    }
    for name, req in failing.items():
        assert not point.decide(req).permitted, name
    assert point.decide(request("north/referrer", auth=AuthStrength.TWO_FACTOR, ip="fd00::1")).permitted
    assert not point.decide(request("north/referrer", **ok), at("2026-01-05T16:30:00+00:00")).permitted  # type: ignore[arg-type]
    assert not point.decide(request("north/referrer", **ok), at("2026-01-04T09:00:00+00:00")).permitted  # type: ignore[arg-type]


def test_hours_may_wrap_midnight(make_point: MakePoint) -> None:
    night = READ.replace("actions: [query, read]", 'actions: [read]\n    when: {hours: "22:00-06:00"}')
    point = make_point({"north": night})
    assert point.decide(request("north/referrer"), at("2026-01-05T23:30:00+00:00")).permitted
    assert point.decide(request("north/referrer"), at("2026-01-05T05:59:00+00:00")).permitted
    assert not point.decide(request("north/referrer"), at("2026-01-05T12:00:00+00:00")).permitted


def test_deny_names_closest_rule_and_what_it_lacked(make_point: MakePoint, clock: FakeClock) -> None:
    clock.set(at("2026-01-05T09:00:00+00:00"))
    decision = make_point({"north": CONDITIONS}).decide(request("north/referrer", ip="10.1.2.3"))
    assert decision.effect is Effect.DENY
    assert decision.closest == "guarded"
    assert decision.lacking == ("authentication password is weaker than two_factor",)


def test_expired_assignment_never_grants(make_point: MakePoint, clock: FakeClock) -> None:
    point = make_point({"north": READ})
    past = Validity(clock.now() - timedelta(days=2), clock.now() - timedelta(days=1))
    decision = point.decide(request(held("north/referrer", validity=past)))
    assert decision.effect is Effect.DENY
    assert "role-not-valid" in [r.code for r in decision.reasons]
    future = Validity(clock.now() + timedelta(days=1), None)
    assert not point.decide(request(held("north/referrer", validity=future))).permitted


def test_delegation_counts_for_its_actions_and_names_the_chain(make_point: MakePoint) -> None:
    point = make_point({"north": READ})
    delegated = held("north/referrer", actions={Action.READ})
    decision = point.decide(request(delegated))
    assert decision.permitted
    assert decision.delegation == ("a-1", "d-1")
    refused = point.decide(request(delegated, action=Action.QUERY))
    assert refused.effect is Effect.DENY
    assert "delegation-scope" in [r.code for r in refused.reasons]


def test_decide_many_at_one_instant(make_point: MakePoint) -> None:
    point = make_point({"north": READ})
    requests = [
        request("north/referrer"),
        request("north/security-officer"),
        request("south/radiologist", zone="south"),
    ]
    assert [d.effect for d in point.decide_many(requests)] == [Effect.PERMIT, Effect.DENY, Effect.DENY]


def test_admin_wildcard(make_point: MakePoint) -> None:
    admin = (
        "zone: north\nrules:\n  - id: adm\n    effect: permit\n    roles: [security-officer]\n    actions: [admin.*]\n"
    )
    point = make_point({"north": admin})
    assert point.decide(request("north/security-officer", action=Action.ADMIN_USERS)).permitted
    assert not point.decide(request("north/security-officer", action=Action.DELETE)).permitted


def test_decide_many_keeps_fresh_subjects_apart(make_point: MakePoint) -> None:
    point = make_point({"north": READ})
    roles = ["north/referrer", "north/security-officer"] * 50

    def fresh() -> Iterator[AccessRequest]:
        for role in roles:  # a new Subject each time, dropped after use
            yield request(role)

    assert [d.permitted for d in point.decide_many(fresh())] == [role == "north/referrer" for role in roles]
