"""Access across organisations goes only through an agreement in force, with mapped roles."""

from __future__ import annotations

from pacsguard.domain import Action, Effect, Purpose, Sensitivity
from pacsguard.policy import DecisionPoint
from tests.unit.policy.conftest import MakePoint
from tests.unit.policy.helpers import at, request

NORTH = """zone: north
rules:
  - id: north-read
    effect: permit
    roles: [radiologist]
    actions: [query, read, export]
"""

AGREEMENT = """id: ns
parties: [north, south]
state: {state}
validity: {{not_before: 2026-01-01, not_after: 2027-01-01}}
scope:
  actions: [query, read]
  max_sensitivity: internal
  purposes: [treatment]
role_mapping:
  south/radiologist: [north/radiologist]
"""


def point(make_point: MakePoint, state: str = "active") -> DecisionPoint:
    return make_point({"north": NORTH}, {"ns": AGREEMENT.format(state=state)})


def south(**kwargs: object) -> object:
    return request("south/radiologist", zone="south", **kwargs)  # type: ignore[arg-type]


def test_agreement_in_force_permits_and_is_named(make_point: MakePoint) -> None:
    decision = point(make_point).decide(south())  # type: ignore[arg-type]
    assert decision.permitted
    assert decision.agreement == "ns"
    assert decision.rule_ids == ("north-read",)


def test_without_agreement_denied(make_point: MakePoint) -> None:
    decision = make_point({"north": NORTH}).decide(south())  # type: ignore[arg-type]
    assert decision.effect is Effect.DENY
    assert "no-agreement" in [r.code for r in decision.reasons]


def test_agreement_not_active_or_expired_never_grants(make_point: MakePoint) -> None:
    for state in ("draft", "suspended", "terminated"):
        assert not point(make_point, state).decide(south()).permitted  # type: ignore[arg-type]
    active = point(make_point)
    assert not active.decide(south(), at("2027-01-01T00:00:00+00:00")).permitted  # type: ignore[arg-type]
    assert not active.decide(south(), at("2025-12-31T23:59:00+00:00")).permitted  # type: ignore[arg-type]


def test_agreement_scope_limits(make_point: MakePoint) -> None:
    p = point(make_point)
    for req in (
        south(action=Action.EXPORT),
        south(sensitivity=Sensitivity.CONFIDENTIAL),
        south(purpose=Purpose.RESEARCH),
    ):
        decision = p.decide(req)  # type: ignore[arg-type]
        assert decision.effect is Effect.DENY
        assert "agreement-scope" in [r.code for r in decision.reasons]


def test_target_policy_must_allow_the_mapped_role(make_point: MakePoint) -> None:
    agreement = AGREEMENT.format(state="active").replace("[north/radiologist]", "[north/security-officer]")
    decision = make_point({"north": NORTH}, {"ns": agreement}).decide(south())  # type: ignore[arg-type]
    assert decision.effect is Effect.DENY
    assert decision.closest == "north-read"


def test_unmapped_role_gets_nothing(make_point: MakePoint) -> None:
    decision = point(make_point).decide(request("south/security-officer", zone="south"))
    assert decision.effect is Effect.DENY


def test_same_organisation_needs_no_agreement(make_point: MakePoint) -> None:
    decision = make_point({"north": NORTH}).decide(
        request("north/radiologist", zone="north-cardiology", study_zone="north")
    )
    assert decision.permitted
    assert decision.agreement is None
