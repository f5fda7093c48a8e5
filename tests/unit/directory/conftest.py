"""A directory on each backend, with the template's zones and a fast argon2id hasher."""

from __future__ import annotations

from collections.abc import Callable
from importlib import resources

import pytest
from argon2 import PasswordHasher
from sqlalchemy import Engine

from pacsguard.clock import FakeClock
from pacsguard.config import AuthSettings
from pacsguard.directory import Directory, Operator, Principal, PrincipalKind
from pacsguard.domain import RecordingSink, RoleRef, ZoneTree
from pacsguard.site import load_zones

OPERATOR = Operator("root")
OFFICER = RoleRef("north", "security-officer")
RADIOLOGIST = RoleRef("north", "radiologist")
REFERRER = RoleRef("north", "referrer")
PASSWORD = "Correct-horse-42"


@pytest.fixture
def zones() -> ZoneTree:
    with resources.as_file(resources.files("pacsguard") / "site_template" / "zones.yaml") as path:
        return load_zones(path)


@pytest.fixture
def directory(engine: Engine, zones: ZoneTree, events: RecordingSink, clock: FakeClock) -> Directory:
    cheap = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)  # still argon2id
    return Directory(engine, zones, AuthSettings(), events, clock, password_hasher=cheap)


@pytest.fixture
def person(directory: Directory) -> Callable[..., Principal]:
    """A factory: add a person in zone ``north`` (with a password unless told otherwise)."""

    def make(principal_id: str, zone: str = "north", password: str | None = PASSWORD) -> Principal:
        p = directory.principals.create(
            principal_id, kind=PrincipalKind.PERSON, display_name=principal_id.title(), zone=zone, by=OPERATOR
        )
        if password is not None:
            directory.auth.set_password(principal_id, password, by=OPERATOR)
        return p

    return make
