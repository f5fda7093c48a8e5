"""Agreement files load into values, and bad ones give located errors."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from pacsguard.agreements import AgreementState, load_agreements
from pacsguard.domain import Action, Purpose, Role, RoleRef, Sensitivity, Zone, ZoneTree
from pacsguard.errors import ConfigError, Problem

ZONES = ZoneTree.build(
    [
        Zone("north", "North", roles=(Role(RoleRef("north", "radiologist")),)),
        Zone("north-x", "North X", "north", roles=(Role(RoleRef("north-x", "nurse")),)),
        Zone("south", "South", roles=(Role(RoleRef("south", "radiologist")),)),
    ]
)

GOOD = """id: ns
parties: [north, south]
state: active
validity: {not_before: 2026-01-01, not_after: 2027-01-01T12:00:00Z}
scope:
  actions: [query, read]
  max_sensitivity: confidential
  purposes: [treatment]
role_mapping:
  north-x/nurse: [south/radiologist]
  south/radiologist: [north/radiologist]
"""


def problems_of(tmp_path: Path, text: str) -> list[Problem]:
    (tmp_path / "a.yaml").write_text(text)
    with pytest.raises(ConfigError) as caught:
        load_agreements(tmp_path, ZONES)
    return caught.value.problems


def test_good_agreement(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(GOOD)
    (agreement,) = load_agreements(tmp_path, ZONES)
    assert agreement.state is AgreementState.ACTIVE
    assert agreement.actions == {Action.QUERY, Action.READ}
    assert agreement.max_sensitivity is Sensitivity.CONFIDENTIAL
    assert agreement.role_mapping[RoleRef("north-x", "nurse")] == (RoleRef("south", "radiologist"),)
    assert agreement.in_force(datetime(2026, 6, 1, tzinfo=UTC))
    assert not agreement.in_force(datetime(2027, 1, 1, 12, tzinfo=UTC))
    assert agreement.scope_lacks(Action.EXPORT, Sensitivity.INTERNAL, Purpose.TREATMENT) is not None
    assert agreement.scope_lacks(Action.READ, Sensitivity.INTERNAL, Purpose.TREATMENT) is None


def test_missing_directory_is_no_agreements(tmp_path: Path) -> None:
    assert load_agreements(tmp_path / "none", ZONES) == ()


def test_unknown_party(tmp_path: Path) -> None:
    (problem,) = problems_of(tmp_path, GOOD.replace("[north, south]", "[north, east]"))
    assert (problem.message, problem.line, problem.key) == ("unknown zone 'east'", 2, "parties[1]")


def test_unknown_state(tmp_path: Path) -> None:
    (problem,) = problems_of(tmp_path, GOOD.replace("state: active", "state: signed"))
    assert (problem.line, problem.key) == (3, "state")


def test_mapping_must_cross_parties(tmp_path: Path) -> None:
    (problem,) = problems_of(tmp_path, GOOD.replace("[south/radiologist]", "[north/radiologist]"))
    assert problem.message == "'north/radiologist' must be a role of the other party"
    assert (problem.line, problem.key) == (10, "role_mapping.north-x/nurse[0]")


def test_unknown_role_in_mapping(tmp_path: Path) -> None:
    (problem,) = problems_of(tmp_path, GOOD.replace("south/radiologist: [", "south/surgeon: ["))
    assert problem.message == "unknown role 'south/surgeon'"


def test_validity_must_end_after_start(tmp_path: Path) -> None:
    (problem,) = problems_of(tmp_path, GOOD.replace("not_before: 2026-01-01", "not_before: 2028-01-01"))
    assert problem.key == "validity"


def test_duplicate_ids(tmp_path: Path) -> None:
    (tmp_path / "b.yaml").write_text(GOOD)
    (problem,) = problems_of(tmp_path, GOOD)
    assert "duplicate agreement id 'ns'" in problem.message
