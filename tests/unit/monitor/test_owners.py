"""A rule's owner becomes e-mail addresses: an address as is, a principal's e-mail, every
active holder of a role; the site's ``to`` list always gets the mail too."""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest
from sqlalchemy import Engine as DbEngine

from pacsguard.clock import FakeClock
from pacsguard.config import AuthSettings
from pacsguard.directory import Directory, Operator, PrincipalKind
from pacsguard.domain import RecordingSink, RoleRef
from pacsguard.monitor.notify import EmailNotifier
from pacsguard.monitor.owners import OwnerAddresses
from pacsguard.monitor.wiring import with_owners
from pacsguard.site import load_zones, scaffold

OPERATOR = Operator("test")


@pytest.fixture
def directory(engine: DbEngine, clock: FakeClock, events: RecordingSink, tmp_path: Path) -> Directory:
    scaffold(tmp_path / "site")
    d = Directory(engine, load_zones(tmp_path / "site" / "zones.yaml"), AuthSettings(), events, clock)
    people = {
        "olga": ("north", "security-officer", "olga@north.test"),
        "sven": ("south", "security-officer", "sven@south.test"),
        "otto": ("north", "security-officer", None),  # an officer without an address
        "carl": ("north", "security-officer", "carl@north.test"),  # locked below
        "alice": ("north", "radiologist", "alice@north.test"),
    }
    for pid, (zone, role, email) in people.items():
        d.principals.create(pid, kind=PrincipalKind.PERSON, display_name=pid, zone=zone, email=email, by=OPERATOR)
        d.assignments.grant(pid, RoleRef(zone, role), by=OPERATOR)
    d.principals.lock("carl", reason="on leave", by=OPERATOR)
    return d


def test_owners_resolve_to_addresses(directory: Directory) -> None:
    owners = OwnerAddresses(directory)
    assert owners("security-officer") == ("olga@north.test", "sven@south.test")
    assert owners("north/security-officer") == ("olga@north.test",)
    assert owners("alice") == ("alice@north.test",)
    assert owners("soc@hospital.test") == ("soc@hospital.test",)
    assert owners("otto") == ()
    assert owners("carl") == ()  # locked: not alerted
    assert owners("no-such-role") == ()


def test_the_email_channel_writes_to_the_owner_and_the_site_list(directory: Directory) -> None:
    mail = EmailNotifier("127.0.0.1", 25, "monitor@site.test", ("soc@site.test",), ssl.create_default_context())
    [wired] = with_owners({"email": mail}, directory).values()
    assert isinstance(wired, EmailNotifier)
    assert wired.addresses({"owner": "security-officer"}) == ["olga@north.test", "sven@south.test", "soc@site.test"]
    assert wired.addresses({"owner": "soc@site.test"}) == ["soc@site.test"]
    assert mail.addresses({"owner": "security-officer"}) == ["soc@site.test"]  # without the directory
