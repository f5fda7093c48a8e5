"""Passwords, the password policy, automatic lockout and TOTP."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pyotp
import pytest

from pacsguard.clock import FakeClock
from pacsguard.config import PasswordPolicy
from pacsguard.directory import AccountState, Client, Directory, Principal, policy_problems
from pacsguard.domain import AuthStrength, Outcome, RecordingSink
from pacsguard.errors import AccountLocked, InvalidCredentials, MfaError, WeakPassword
from tests.unit.directory.conftest import OPERATOR, PASSWORD

CLIENT = Client("10.0.0.7", "ws-12", "Weasis/4")


def fail(directory: Directory, times: int) -> None:
    for _ in range(times):
        with pytest.raises(InvalidCredentials):
            directory.auth.login("alice", "wrong-Password-1", client=CLIENT)


def test_login_opens_a_session_and_is_audited(
    directory: Directory, person: Callable[..., Principal], events: RecordingSink
) -> None:
    person("alice")
    issued = directory.auth.login("alice", PASSWORD, client=CLIENT)
    assert issued.session.auth_strength is AuthStrength.PASSWORD
    [ok] = events.of_type("login.success")
    assert (ok.actor.principal_id, ok.actor.ip, ok.actor.device_id, ok.actor.user_agent) == (
        "alice",
        "10.0.0.7",
        "ws-12",
        "Weasis/4",
    )
    assert ok.actor.session_id == issued.session.id
    assert issued.secret not in str(events.events)


def test_unknown_user_and_bad_password_look_the_same(
    directory: Directory, person: Callable[..., Principal], events: RecordingSink
) -> None:
    person("alice")
    with pytest.raises(InvalidCredentials) as unknown:
        directory.auth.login("mallory", PASSWORD, client=CLIENT)
    with pytest.raises(InvalidCredentials) as wrong:
        directory.auth.login("alice", "nope", client=CLIENT)
    assert str(unknown.value) == str(wrong.value)
    reasons = [e.detail["reason"] for e in events.of_type("login.failure")]
    assert reasons == ["unknown_user", "bad_password"]
    assert all(e.outcome is Outcome.FAILURE for e in events.of_type("login.failure"))


def test_lockout_at_the_threshold_and_lifting_after_its_period(
    directory: Directory, person: Callable[..., Principal], events: RecordingSink, clock: FakeClock
) -> None:
    person("alice")
    fail(directory, 8)  # 8 failures do not lock (the rule is "more than 8")
    assert directory.principals.get("alice").state is AccountState.ACTIVE
    assert directory.auth.failures("alice") == 8
    fail(directory, 1)  # the 9th does
    [locked] = events.of_type("account.locked")
    assert locked.detail["automatic"] is True
    assert locked.detail["until"] == (clock.now() + timedelta(minutes=15)).isoformat()
    with pytest.raises(AccountLocked):  # even the right password
        directory.auth.login("alice", PASSWORD, client=CLIENT)
    assert events.of_type("login.failure")[-1].detail["reason"] == "locked"
    clock.advance(minutes=15)
    assert directory.auth.login("alice", PASSWORD, client=CLIENT).session.principal_id == "alice"
    assert events.of_type("account.unlocked")[0].detail == {"automatic": True}


def test_failures_outside_the_window_do_not_count(
    directory: Directory, person: Callable[..., Principal], clock: FakeClock
) -> None:
    person("alice")
    fail(directory, 8)
    clock.advance(minutes=10)
    fail(directory, 8)
    assert directory.principals.get("alice").state is AccountState.ACTIVE


def test_a_success_clears_the_count(directory: Directory, person: Callable[..., Principal]) -> None:
    person("alice")
    fail(directory, 8)
    directory.auth.login("alice", PASSWORD)
    fail(directory, 8)
    assert directory.principals.get("alice").state is AccountState.ACTIVE


def test_disabled_and_officer_locked_accounts_cannot_log_in(
    directory: Directory, person: Callable[..., Principal], events: RecordingSink
) -> None:
    person("alice")
    directory.principals.disable("alice", by=OPERATOR)
    with pytest.raises(AccountLocked) as caught:
        directory.auth.login("alice", PASSWORD)
    assert caught.value.reason == "disabled"
    directory.principals.enable("alice", by=OPERATOR)
    directory.principals.lock("alice", reason="incident", by=OPERATOR)
    with pytest.raises(AccountLocked):
        directory.auth.login("alice", PASSWORD)
    assert [e.detail["reason"] for e in events.of_type("login.failure")] == ["disabled", "locked"]


def test_the_password_policy(directory: Directory, person: Callable[..., Principal], events: RecordingSink) -> None:
    person("alice", password=None)
    for weak in ("Short-1", "alllowercaseletters", "Alice-is-12345"):
        with pytest.raises(WeakPassword):
            directory.auth.set_password("alice", weak, by=OPERATOR)
    assert events.of_type("password.changed") == []
    policy = PasswordPolicy()
    assert policy_problems(policy, "Correct-horse-42", "alice") == []
    assert len(policy_problems(policy, "alice", "alice")) == 3


def test_totp_second_factor_and_replay(
    directory: Directory, person: Callable[..., Principal], events: RecordingSink, clock: FakeClock
) -> None:
    person("alice")
    enrolment = directory.auth.enroll_totp("alice", by=OPERATOR)
    assert enrolment.provisioning_uri.startswith("otpauth://totp/")
    assert "issuer=pacsguard" in enrolment.provisioning_uri
    code = pyotp.TOTP(enrolment.secret).at(clock.now())
    with pytest.raises(MfaError) as missing:
        directory.auth.login("alice", PASSWORD, client=CLIENT)
    assert missing.value.reason == "mfa_required"
    issued = directory.auth.login("alice", PASSWORD, totp_code=code, client=CLIENT)
    assert issued.session.auth_strength is AuthStrength.TWO_FACTOR
    with pytest.raises(MfaError) as replay:
        directory.auth.login("alice", PASSWORD, totp_code=code, client=CLIENT)
    assert replay.value.reason == "replay"
    assert [e.detail["reason"] for e in events.of_type("mfa.failure")] == ["replay"]
    assert events.of_type("login.failure")[0].detail["reason"] == "mfa_required"


def test_totp_tolerates_one_step_either_way(
    directory: Directory, person: Callable[..., Principal], clock: FakeClock
) -> None:
    person("alice")
    secret = directory.auth.enroll_totp("alice", by=OPERATOR).secret
    totp = pyotp.TOTP(secret)
    previous = totp.at(clock.now() - timedelta(seconds=30))
    directory.auth.verify_totp("alice", previous)
    later = clock.now() + timedelta(seconds=30)
    directory.auth.verify_totp("alice", totp.at(later))
    with pytest.raises(MfaError) as too_far:
        directory.auth.verify_totp("alice", totp.at(clock.now() + timedelta(seconds=90)))
    assert too_far.value.reason == "bad_code"
    with pytest.raises(MfaError) as older:  # a valid code of an earlier step than the last used
        directory.auth.verify_totp("alice", totp.at(clock.now()))
    assert older.value.reason == "replay"


def test_guessing_at_an_account_without_password_locks_nothing(
    directory: Directory, person: Callable[..., Principal]
) -> None:
    person("alice", password=None)
    fail(directory, 12)
    assert directory.principals.get("alice").state is AccountState.ACTIVE
