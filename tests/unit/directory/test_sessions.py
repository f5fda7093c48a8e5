"""Sessions: hashed secrets, idle and absolute timeouts, revocation one by one or all."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest
from sqlalchemy import Engine, select

from pacsguard.clock import FakeClock
from pacsguard.directory import Client, Directory, Principal
from pacsguard.domain import AuthStrength, RecordingSink
from pacsguard.errors import AccountLocked, TokenError
from pacsguard.storage.directory_tables import auth_sessions
from tests.unit.directory.conftest import OPERATOR, PASSWORD, RADIOLOGIST

CLIENT = Client("10.0.0.7", "ws-12", "Weasis/4")


@pytest.fixture
def alice(directory: Directory, person: Callable[..., Principal]) -> str:
    person("alice")
    directory.assignments.grant("alice", RADIOLOGIST, by=OPERATOR)
    return "alice"


def test_a_session_is_stored_hashed_with_its_context(directory: Directory, alice: str, engine: Engine) -> None:
    issued = directory.auth.login(alice, PASSWORD, client=CLIENT)
    with engine.connect() as conn:
        row = conn.execute(select(auth_sessions)).one()
    assert issued.secret not in (row.id, row.token_hash)
    assert len(row.token_hash) == 64
    assert (row.ip, row.device_id, row.user_agent, row.auth_strength) == ("10.0.0.7", "ws-12", "Weasis/4", 1)
    subject = directory.session_subject(issued.secret)
    assert subject.principal_id == alice
    assert subject.auth_strength is AuthStrength.PASSWORD
    assert [h.role for h in subject.roles] == [RADIOLOGIST]


def test_idle_timeout(directory: Directory, alice: str, clock: FakeClock, events: RecordingSink) -> None:
    secret = directory.auth.login(alice, PASSWORD).secret
    clock.advance(minutes=29)
    directory.sessions.validate(secret)  # use keeps it alive
    clock.advance(minutes=29)
    directory.sessions.validate(secret)
    clock.advance(minutes=30)
    with pytest.raises(TokenError) as caught:
        directory.sessions.validate(secret)
    assert caught.value.reason == "session_expired"
    assert events.of_type("session.expired")[0].detail == {"reason": "idle_timeout"}
    with pytest.raises(TokenError) as again:
        directory.sessions.validate(secret)
    assert again.value.reason == "session_ended"


def test_absolute_timeout(directory: Directory, alice: str, clock: FakeClock, events: RecordingSink) -> None:
    secret = directory.auth.login(alice, PASSWORD).secret
    created = clock.now()
    while clock.now() + timedelta(minutes=29) - created < timedelta(hours=12):  # busy all day: never idle
        clock.advance(minutes=29)
        directory.sessions.validate(secret)
    clock.set(created + timedelta(hours=12))
    with pytest.raises(TokenError) as caught:
        directory.sessions.validate(secret)
    assert caught.value.reason == "session_expired"
    assert events.of_type("session.expired")[0].detail == {"reason": "absolute_timeout"}


def test_revoke_one_and_all_idempotently(directory: Directory, alice: str, events: RecordingSink) -> None:
    first = directory.auth.login(alice, PASSWORD)
    second = directory.auth.login(alice, PASSWORD)
    third = directory.auth.login(alice, PASSWORD)
    assert directory.sessions.revoke(first.session.id, by=OPERATOR) is True
    assert directory.sessions.revoke(first.session.id, by=OPERATOR) is False
    assert directory.sessions.revoke_all(alice, by="olga", reason="containment") == 2
    assert directory.sessions.revoke_all(alice, by="olga", reason="containment") == 0
    for issued in (first, second, third):
        with pytest.raises(TokenError):
            directory.sessions.validate(issued.secret)
    assert len(events.of_type("session.revoked")) == 3


def test_unknown_secret_is_rejected_and_audited(directory: Directory, events: RecordingSink) -> None:
    with pytest.raises(TokenError):
        directory.sessions.validate("not-a-session", CLIENT)
    [rejected] = events.of_type("token.rejected")
    assert rejected.detail == {"kind": "session", "reason": "unknown_session"}
    assert rejected.actor.ip == "10.0.0.7"


def test_an_officer_lock_stops_live_sessions(directory: Directory, alice: str) -> None:
    secret = directory.auth.login(alice, PASSWORD).secret
    directory.principals.lock(alice, reason="incident", by=OPERATOR)
    with pytest.raises(TokenError) as caught:
        directory.sessions.validate(secret)
    assert caught.value.reason == "account_locked"
    with pytest.raises(AccountLocked):
        directory.subject(alice)


def test_containment_locks_and_ends_everything_once(directory: Directory, alice: str, events: RecordingSink) -> None:
    secret = directory.auth.login(alice, PASSWORD).secret
    token = directory.tokens.issue(alice, name="x", scopes=["read"], by=OPERATOR).secret
    first = directory.contain(alice, reason="bulk export alert", by="monitor")
    assert (first.locked, first.sessions_ended, first.tokens_revoked) == (True, 1, 1)
    emitted = len(events.events)
    again = directory.contain(alice, reason="bulk export alert", by="monitor")
    assert (again.locked, again.sessions_ended, again.tokens_revoked) == (False, 0, 0)
    assert len(events.events) == emitted
    with pytest.raises(TokenError):
        directory.sessions.validate(secret)
    with pytest.raises(TokenError):
        directory.tokens.validate(token)
