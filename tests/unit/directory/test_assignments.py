"""Assignments: validity periods and attestation rights."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest

from pacsguard.clock import FakeClock
from pacsguard.directory import Directory, Principal
from pacsguard.domain import Outcome, RecordingSink, RoleRef, RoleSource, Validity
from pacsguard.errors import AttestationRefused, InvalidEntry, NotFound
from tests.unit.directory.conftest import OFFICER, OPERATOR, RADIOLOGIST


@pytest.fixture
def officer(directory: Directory, person: Callable[..., Principal]) -> str:
    person("olga")
    directory.assignments.grant("olga", OFFICER, by=OPERATOR)
    return "olga"


def test_an_expired_assignment_grants_nothing(
    directory: Directory, person: Callable[..., Principal], officer: str, clock: FakeClock
) -> None:
    person("alice")
    start = clock.now()
    directory.assignments.grant("alice", RADIOLOGIST, Validity(start, start + timedelta(days=1)), by=officer)
    [held] = directory.subject("alice").roles
    assert (held.role, held.source, held.chain[0]) == (RADIOLOGIST, RoleSource.ASSIGNMENT, held.source_id)
    clock.advance(days=1)  # the end instant is already outside
    assert directory.subject("alice").roles == ()
    assert directory.subject("alice", start).roles != ()


def test_a_future_assignment_grants_nothing_yet(
    directory: Directory, person: Callable[..., Principal], officer: str, clock: FakeClock
) -> None:
    person("alice")
    later = clock.now() + timedelta(hours=2)
    directory.assignments.grant("alice", RADIOLOGIST, Validity(later), by=officer)
    assert directory.subject("alice").roles == ()
    clock.advance(hours=2)
    assert [h.role for h in directory.subject("alice").roles] == [RADIOLOGIST]


def test_assigning_without_the_attestation_right_is_refused_and_audited(
    directory: Directory, person: Callable[..., Principal], officer: str, events: RecordingSink
) -> None:
    person("alice")
    person("bob")
    directory.assignments.grant("alice", RADIOLOGIST, by=officer)
    with pytest.raises(AttestationRefused, match="security-officer"):
        directory.assignments.grant("bob", RADIOLOGIST, by="alice")  # a radiologist is no officer
    denied = [e for e in events.of_type("admin.role.grant") if e.outcome is Outcome.DENIED]
    assert len(denied) == 1
    assert denied[0].actor.principal_id == "alice"
    assert denied[0].objects.target_principal == "bob"
    assert denied[0].detail["role"] == "north/radiologist"
    assert directory.subject("bob").roles == ()


def test_a_role_without_assignable_by_is_for_the_operator_only(
    directory: Directory, person: Callable[..., Principal], officer: str, events: RecordingSink
) -> None:
    person("alice")
    with pytest.raises(AttestationRefused, match="only the site operator"):
        directory.assignments.grant("alice", OFFICER, by=officer)
    assert events.of_type("admin.role.grant")[-1].outcome is Outcome.DENIED
    granted = directory.assignments.grant("alice", OFFICER, by=OPERATOR)
    assert granted.assigned_by == "operator:root"


def test_nobody_assigns_a_role_to_themselves(directory: Directory, officer: str) -> None:
    with pytest.raises(AttestationRefused, match="themselves"):
        directory.assignments.grant(officer, RADIOLOGIST, by=officer)


def test_a_role_of_another_zone_needs_that_zones_officer(
    directory: Directory, person: Callable[..., Principal], officer: str
) -> None:
    person("bob", zone="south")
    with pytest.raises(AttestationRefused):
        directory.assignments.grant("bob", RoleRef("south", "radiologist"), by=officer)
    cardiologist = RoleRef("north-cardiology", "cardiologist")  # assignable_by north/security-officer
    assert directory.assignments.grant("bob", cardiologist, by=officer).role == cardiologist


def test_a_locked_officer_cannot_assign(directory: Directory, person: Callable[..., Principal], officer: str) -> None:
    person("alice")
    directory.principals.lock(officer, reason="incident", by=OPERATOR)
    with pytest.raises(AttestationRefused, match="not an active"):
        directory.assignments.grant("alice", RADIOLOGIST, by=officer)


def test_revoking_ends_the_role(
    directory: Directory, person: Callable[..., Principal], officer: str, events: RecordingSink
) -> None:
    person("alice")
    a = directory.assignments.grant("alice", RADIOLOGIST, by=officer)
    assert directory.assignments.revoke(a.id, by=officer) is True
    assert directory.assignments.revoke(a.id, by=officer) is False
    assert directory.subject("alice").roles == ()
    assert directory.assignments.get(a.id).revoked_by == officer
    assert len(events.of_type("admin.role.revoke")) == 1


def test_revoking_needs_the_right_too(
    directory: Directory, person: Callable[..., Principal], officer: str, events: RecordingSink
) -> None:
    person("alice")
    person("bob")
    a = directory.assignments.grant("alice", RADIOLOGIST, by=officer)
    with pytest.raises(AttestationRefused):
        directory.assignments.revoke(a.id, by="bob")
    assert events.of_type("admin.role.revoke")[-1].outcome is Outcome.DENIED
    assert directory.subject("alice").roles != ()


def test_bad_grants(directory: Directory, person: Callable[..., Principal], clock: FakeClock) -> None:
    person("alice")
    with pytest.raises(NotFound, match="no role"):
        directory.assignments.grant("alice", RoleRef("north", "janitor"), by=OPERATOR)
    with pytest.raises(NotFound, match="no principal"):
        directory.assignments.grant("nobody", RADIOLOGIST, by=OPERATOR)
    past = Validity(clock.now() - timedelta(days=2), clock.now() - timedelta(days=1))
    with pytest.raises(InvalidEntry, match="already past"):
        directory.assignments.grant("alice", RADIOLOGIST, past, by=OPERATOR)
