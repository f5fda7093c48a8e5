"""Delegation: periods within the source, chains, re-delegation, revocation cascades."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest

from pacsguard.clock import FakeClock
from pacsguard.directory import Assignment, Directory, Principal
from pacsguard.domain import Action, Outcome, RecordingSink, RoleSource, Validity
from pacsguard.errors import DelegationRefused
from tests.unit.directory.conftest import OPERATOR, RADIOLOGIST


@pytest.fixture
def source(directory: Directory, person: Callable[..., Principal], clock: FakeClock) -> Assignment:
    """alice is a radiologist for 10 days; bob and carol are colleagues without roles."""
    for name in ("alice", "bob", "carol"):
        person(name)
    period = Validity(clock.now(), clock.now() + timedelta(days=10))
    return directory.assignments.grant("alice", RADIOLOGIST, period, by=OPERATOR)


def days(clock: FakeClock, start: float, end: float) -> Validity:
    return Validity(clock.now() + timedelta(days=start), clock.now() + timedelta(days=end))


def test_a_delegation_ends_at_its_own_end(directory: Directory, source: Assignment, clock: FakeClock) -> None:
    d = directory.delegations.delegate("alice", "bob", RADIOLOGIST, days(clock, 0, 2))
    [held] = directory.subject("bob").roles
    assert (held.source, held.source_id, held.chain) == (RoleSource.DELEGATION, d.id, (source.id, d.id))
    clock.advance(days=2)
    assert directory.subject("bob").roles == ()
    assert directory.subject("alice").roles != ()


def test_a_delegation_never_outlives_its_source(directory: Directory, source: Assignment, clock: FakeClock) -> None:
    d = directory.delegations.delegate("alice", "bob", RADIOLOGIST, days(clock, 0, 30))
    assert d.validity.not_after == source.validity.not_after  # clipped on the way in
    [held] = directory.subject("bob").roles
    assert held.validity.not_after == source.validity.not_after
    clock.advance(days=10)
    assert directory.subject("bob").roles == ()


def test_a_delegation_outside_the_source_period_is_refused(
    directory: Directory, source: Assignment, clock: FakeClock, events: RecordingSink
) -> None:
    with pytest.raises(DelegationRefused, match="overlap"):
        directory.delegations.delegate("alice", "bob", RADIOLOGIST, days(clock, 11, 12))
    [refused] = events.of_type("delegation.refused")
    assert refused.outcome is Outcome.DENIED
    assert refused.detail["reason"] == "period_outside_source"


def test_re_delegation_is_refused_by_default(
    directory: Directory, source: Assignment, clock: FakeClock, events: RecordingSink
) -> None:
    directory.delegations.delegate("alice", "bob", RADIOLOGIST, days(clock, 0, 5))
    with pytest.raises(DelegationRefused, match="without the right to pass it on"):
        directory.delegations.delegate("bob", "carol", RADIOLOGIST, days(clock, 0, 1))
    assert events.of_type("delegation.refused")[0].detail["reason"] == "no_redelegation"
    assert directory.subject("carol").roles == ()


def test_re_delegation_when_allowed_keeps_the_chain(directory: Directory, source: Assignment, clock: FakeClock) -> None:
    first = directory.delegations.delegate("alice", "bob", RADIOLOGIST, days(clock, 0, 5), may_redelegate=True)
    second = directory.delegations.delegate("bob", "carol", RADIOLOGIST, days(clock, 0, 8), actions=[Action.READ])
    assert second.chain == (source.id, first.id, second.id)
    assert second.parent_id == first.id
    [held] = directory.subject("carol").roles
    assert held.chain == (source.id, first.id, second.id)
    assert held.actions == frozenset({Action.READ})
    assert held.validity.not_after == first.validity.not_after  # within bob's, which is within alice's
    assert [d.id for d in directory.delegations.chain_of(second.id)] == [first.id, second.id]


def test_revoking_the_source_ends_the_delegations(
    directory: Directory, source: Assignment, clock: FakeClock, events: RecordingSink
) -> None:
    first = directory.delegations.delegate("alice", "bob", RADIOLOGIST, days(clock, 0, 5), may_redelegate=True)
    second = directory.delegations.delegate("bob", "carol", RADIOLOGIST, days(clock, 0, 5))
    directory.assignments.revoke(source.id, by=OPERATOR)
    assert directory.subject("bob").roles == ()
    assert directory.subject("carol").roles == ()
    revoked = {e.detail["delegation"] for e in events.of_type("delegation.revoked")}
    assert revoked == {first.id, second.id}
    assert directory.delegations.get(second.id).revoked_at is not None


def test_revoking_a_delegation_ends_its_sub_delegations_only(
    directory: Directory, source: Assignment, clock: FakeClock
) -> None:
    first = directory.delegations.delegate("alice", "bob", RADIOLOGIST, days(clock, 0, 5), may_redelegate=True)
    directory.delegations.delegate("bob", "carol", RADIOLOGIST, days(clock, 0, 5))
    assert directory.delegations.revoke(first.id, by="alice") is True
    assert directory.delegations.revoke(first.id, by="alice") is False
    assert directory.subject("bob").roles == ()
    assert directory.subject("carol").roles == ()
    assert directory.subject("alice").roles != ()


def test_only_the_chain_may_revoke(directory: Directory, source: Assignment, clock: FakeClock) -> None:
    d = directory.delegations.delegate("alice", "bob", RADIOLOGIST, days(clock, 0, 5))
    with pytest.raises(DelegationRefused):
        directory.delegations.revoke(d.id, by="carol")
    assert directory.subject("bob").roles != ()


def test_actions_can_only_narrow(directory: Directory, source: Assignment, clock: FakeClock) -> None:
    directory.delegations.delegate(
        "alice", "bob", RADIOLOGIST, days(clock, 0, 5), actions=[Action.READ, Action.QUERY], may_redelegate=True
    )
    with pytest.raises(DelegationRefused, match="export"):
        directory.delegations.delegate("bob", "carol", RADIOLOGIST, days(clock, 0, 5), actions=[Action.EXPORT])
    inherited = directory.delegations.delegate("bob", "carol", RADIOLOGIST, days(clock, 0, 5))
    assert inherited.actions == frozenset({Action.READ, Action.QUERY})


@pytest.mark.parametrize(
    ("sender", "receiver", "reason"),
    [("bob", "carol", "not_held"), ("alice", "alice", "self")],
)
def test_other_refusals(
    directory: Directory,
    source: Assignment,
    clock: FakeClock,
    events: RecordingSink,
    sender: str,
    receiver: str,
    reason: str,
) -> None:
    with pytest.raises(DelegationRefused):
        directory.delegations.delegate(sender, receiver, RADIOLOGIST, days(clock, 0, 1))
    assert events.of_type("delegation.refused")[0].detail["reason"] == reason


def test_involving_lists_made_and_received(directory: Directory, source: Assignment, clock: FakeClock) -> None:
    d = directory.delegations.delegate("alice", "bob", RADIOLOGIST, days(clock, 0, 1))
    assert [x.id for x in directory.delegations.involving("alice")] == [d.id]
    assert directory.delegations.involving("bob")[0].chain == (source.id, d.id)
