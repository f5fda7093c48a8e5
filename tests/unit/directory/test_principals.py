"""Principals: unique ids, devices as DICOM AEs, account states (idempotent changes)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest

from pacsguard.clock import FakeClock
from pacsguard.directory import AccountState, Device, Directory, Principal, PrincipalKind
from pacsguard.domain import Outcome, RecordingSink
from pacsguard.errors import AlreadyExists, InvalidEntry, NotFound
from tests.unit.directory.conftest import OPERATOR

FP = "AB:" * 31 + "CD"


def test_a_person_is_created_once(directory: Directory, events: RecordingSink) -> None:
    alice = directory.principals.create(
        "alice", kind=PrincipalKind.PERSON, display_name="Alice", zone="north", by=OPERATOR
    )
    assert alice.state is AccountState.ACTIVE
    assert alice.created_by == "operator:root"
    with pytest.raises(AlreadyExists):
        directory.principals.create("alice", kind=PrincipalKind.PERSON, display_name="A", zone="north", by=OPERATOR)
    [created] = events.of_type("principal.created")
    assert created.objects.target_principal == "alice"
    assert created.actor.principal_id == "operator:root"


@pytest.mark.parametrize("bad", ["", "Alice", "a b", "-x", "x" * 65, "operator:root"])
def test_bad_ids_are_refused(directory: Directory, bad: str) -> None:
    with pytest.raises(InvalidEntry):
        directory.principals.create(bad, kind=PrincipalKind.PERSON, display_name="x", zone="north", by=OPERATOR)


def test_unknown_zone_is_refused(directory: Directory) -> None:
    with pytest.raises(NotFound, match="no zone 'east'"):
        directory.principals.create("bob", kind=PrincipalKind.PERSON, display_name="B", zone="east", by=OPERATOR)


def test_a_device_is_a_dicom_ae_found_by_fingerprint_and_ae_title(directory: Directory) -> None:
    device = Device("CT_NORTH_1", "ct1.north.example", FP, "CN=ct1")
    ct = directory.principals.create(
        "ct1", kind=PrincipalKind.DEVICE, display_name="CT", zone="north", device=device, by=OPERATOR
    )
    assert ct.device is not None
    assert ct.device.cert_fingerprint == ("ab" * 31 + "cd")
    assert directory.principals.by_fingerprint(FP.lower()).id == "ct1"
    assert directory.principals.by_ae_title("CT_NORTH_1").id == "ct1"
    with pytest.raises(AlreadyExists):  # one AE title, one certificate, one principal
        directory.principals.create(
            "ct2", kind=PrincipalKind.DEVICE, display_name="CT", zone="north", device=Device("CT_NORTH_1"), by=OPERATOR
        )


def test_device_fields_are_checked(directory: Directory) -> None:
    with pytest.raises(InvalidEntry, match="needs an AE title"):
        directory.principals.create("ct", kind=PrincipalKind.DEVICE, display_name="CT", zone="north", by=OPERATOR)
    with pytest.raises(InvalidEntry, match="AE title"):
        directory.principals.create(
            "ct", kind=PrincipalKind.DEVICE, display_name="CT", zone="north", device=Device("A\\B"), by=OPERATOR
        )
    with pytest.raises(InvalidEntry, match="fingerprint"):
        directory.principals.create(
            "ct",
            kind=PrincipalKind.DEVICE,
            display_name="CT",
            zone="north",
            device=Device("CT", cert_fingerprint="abc"),
            by=OPERATOR,
        )
    with pytest.raises(InvalidEntry, match="only a device"):
        directory.principals.create(
            "app", kind=PrincipalKind.APPLICATION, display_name="A", zone="north", device=Device("CT"), by=OPERATOR
        )


def test_lock_unlock_are_idempotent_and_audited(
    directory: Directory, person: Callable[..., Principal], events: RecordingSink
) -> None:
    person("alice")
    assert directory.principals.lock("alice", reason="phished", by="bob") is True
    assert directory.principals.lock("alice", reason="again", by="bob") is False
    locked = directory.principals.get("alice")
    assert locked.state is AccountState.LOCKED
    assert locked.lock is not None
    assert (locked.lock.reason, locked.lock.by, locked.lock.automatic) == ("phished", "bob", False)
    assert directory.principals.unlock("alice", by=OPERATOR) is True
    assert directory.principals.unlock("alice", by=OPERATOR) is False
    assert directory.principals.get("alice").state is AccountState.ACTIVE
    [lock] = events.of_type("account.locked")
    assert lock.detail == {"reason": "phished", "automatic": False, "until": None}
    assert lock.outcome is Outcome.SUCCESS
    assert lock.actor.principal_id == "bob"
    assert len(events.of_type("account.unlocked")) == 1


def test_a_temporary_lock_lifts_by_itself(
    directory: Directory, person: Callable[..., Principal], clock: FakeClock
) -> None:
    person("alice")
    directory.principals.lock("alice", reason="holiday", by=OPERATOR, until=clock.now() + timedelta(hours=1))
    assert directory.principals.get("alice").state_at(clock.now()) is AccountState.LOCKED
    clock.advance(hours=1)
    assert directory.principals.get("alice").state_at(clock.now()) is AccountState.ACTIVE


def test_disable_and_enable(directory: Directory, person: Callable[..., Principal], events: RecordingSink) -> None:
    person("alice")
    assert directory.principals.disable("alice", by=OPERATOR, reason="left") is True
    assert directory.principals.disable("alice", by=OPERATOR) is False
    assert directory.principals.get("alice").state is AccountState.DISABLED
    assert directory.principals.enable("alice", by=OPERATOR) is True
    assert directory.principals.get("alice").state is AccountState.ACTIVE
    assert events.types().count("account.disabled") == 1
    assert events.types().count("account.enabled") == 1


def test_update_and_list(directory: Directory, person: Callable[..., Principal], events: RecordingSink) -> None:
    person("bob", zone="south")
    person("alice")
    directory.principals.update("alice", display_name="Dr Alice", by=OPERATOR)
    assert directory.principals.get("alice").display_name == "Dr Alice"
    assert [p.id for p in directory.principals.list()] == ["alice", "bob"]
    assert [p.id for p in directory.principals.list(zone="south")] == ["bob"]
    assert events.of_type("principal.updated")[0].detail == {"changed": ["display_name"]}
    with pytest.raises(NotFound):
        directory.principals.get("carol")
