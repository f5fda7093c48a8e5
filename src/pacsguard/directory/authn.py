"""Logging in: password (argon2id), automatic temporary lockout, TOTP second factor,
then a session. Every outcome is emitted: ``login.success``, ``login.failure`` (reason
``unknown_user``, ``bad_password``, ``locked``, ``disabled``, ``mfa_required``),
``mfa.failure`` (``bad_code``, ``replay``), ``account.locked`` / ``account.unlocked``
(automatic), ``password.changed``, ``mfa.enrolled``.

Lockout (``LockoutSettings``): more than ``max_failures`` failed attempts (bad password or
bad second factor) within ``window`` lock the account for ``duration``. A success clears
the count; the lock lifts by itself when its period is over.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Row, delete, func, select, update

from pacsguard.directory import totp
from pacsguard.directory._common import Deps, event, iso
from pacsguard.directory.model import (
    AccountState,
    By,
    Client,
    IssuedSession,
    Principal,
    TotpEnrolment,
    actor_of,
)
from pacsguard.directory.passwords import PasswordVault, check_policy
from pacsguard.directory.principals import clear_lock, locked_event, set_lock, to_principal
from pacsguard.directory.sessions import Sessions
from pacsguard.domain import Actor, AuthStrength, Outcome
from pacsguard.errors import AccountLocked, InvalidCredentials, MfaError, NotFound
from pacsguard.storage.directory_tables import login_failures as tf
from pacsguard.storage.directory_tables import principals as tp

__all__ = ["Authenticator"]

SYSTEM = "system:lockout"


class Authenticator:
    """Checks credentials and opens sessions."""

    def __init__(self, deps: Deps, sessions: Sessions, vault: PasswordVault) -> None:
        self._d = deps
        self._sessions = sessions
        self._vault = vault

    def login(
        self, principal_id: str, password: str, *, totp_code: str | None = None, client: Client | None = None
    ) -> IssuedSession:
        """Check the password (and TOTP code when enrolled) and open a session.

        Raises ``InvalidCredentials`` (unknown user or wrong password, with the same
        message), ``AccountLocked`` (reason ``locked`` or ``disabled``) or ``MfaError``
        (``mfa_required``, ``bad_code``, ``replay``).
        """
        principal = self.verify_password(principal_id, password, client=client)
        client = client or Client()
        strength = AuthStrength.PASSWORD
        if principal.mfa_enrolled:
            if not totp_code:
                self._fail("login.failure", principal.id, "mfa_required", client)
                raise MfaError("mfa_required", "a one-time code is required")
            self.verify_totp(principal.id, totp_code, client=client)
            strength = AuthStrength.TWO_FACTOR
        issued = self._sessions.create(principal.id, strength, client)
        actor = Actor(
            principal_id=principal.id,
            session_id=issued.session.id,
            ip=client.ip,
            device_id=client.device_id,
            user_agent=client.user_agent,
            auth_strength=int(strength),
        )
        self._d.events.emit(
            event(
                "login.success",
                self._d.now(),
                actor,
                target=principal.id,
                zone=principal.zone,
                detail={"auth_strength": int(strength)},
            )
        )
        return issued

    def verify_password(self, principal_id: str, password: str, *, client: Client | None = None) -> Principal:
        """Check a password at constant cost and return the principal (no session).

        Failures are counted and emitted as ``login.failure``; raises like ``login``.
        """
        client = client or Client()
        now = self._d.now()
        with self._d.engine.connect() as conn:
            row = conn.execute(select(tp).where(tp.c.id == principal_id)).first()
        matches = self._vault.verify(row.password_hash if row else None, password)
        if row is None:
            self._fail("login.failure", None, "unknown_user", client, {"username": principal_id[:64]})
            raise InvalidCredentials("unknown_user", "wrong user name or password")
        principal = self._check_state(to_principal(row), now, client)
        if not matches:
            if row.password_hash is None:  # cannot log in by password: nothing to guess, no lockout
                self._fail("login.failure", principal.id, "bad_password", client, {"no_password": True})
            else:
                self._count_failure(principal, "bad_password", client)
            raise InvalidCredentials("bad_password", "wrong user name or password")
        self._after_success(principal.id, row, password)
        return principal

    def verify_totp(self, principal_id: str, code: str, *, client: Client | None = None) -> None:
        """Check a TOTP code (±1 step, no replay) and remember its step.

        Raises ``NotFound``, ``MfaError`` (``not_enrolled``, ``bad_code``, ``replay``).
        """
        client = client or Client()
        now = self._d.now()
        with self._d.engine.begin() as conn:
            row = conn.execute(select(tp).where(tp.c.id == principal_id)).first()
            if row is None:
                raise NotFound(f"no principal {principal_id!r}")
            if row.totp_secret is None:
                raise MfaError("not_enrolled", f"{principal_id} has no second factor enrolled")
            result = totp.check_code(row.totp_secret, code, now, row.totp_last_step)
            if result.step is not None:
                # Only a step later than the stored one may be written: a concurrent use
                # of the same code loses this race and counts as a replay.
                done = conn.execute(
                    update(tp)
                    .where(tp.c.id == principal_id)
                    .where((tp.c.totp_last_step.is_(None)) | (tp.c.totp_last_step < result.step))
                    .values(totp_last_step=result.step)
                )
                if not done.rowcount:
                    result = totp.TotpCheck(None, "replay")
        if result.reason is not None:
            self._count_failure(to_principal(row), result.reason, client, event_type="mfa.failure")
            raise MfaError(result.reason, "the one-time code is wrong or was used already")

    def set_password(self, principal_id: str, password: str, *, by: By) -> None:
        """Set a new password after checking the policy; raises ``NotFound`` or ``WeakPassword``."""
        check_policy(self._d.auth.password, password, principal_id)
        hashed = self._vault.hash(password)
        now = self._d.now()
        with self._d.engine.begin() as conn:
            done = conn.execute(
                update(tp)
                .where(tp.c.id == principal_id)
                .values(password_hash=hashed, password_changed_at=now, updated_at=now)
            )
            if not done.rowcount:
                raise NotFound(f"no principal {principal_id!r}")
        self._d.events.emit(event("password.changed", now, actor_of(by), target=principal_id))

    def enroll_totp(self, principal_id: str, *, by: By) -> TotpEnrolment:
        """Give the principal a new TOTP secret (replacing any); raises ``NotFound``."""
        enrolment = totp.new_enrolment(principal_id, self._d.auth.totp_issuer)
        now = self._d.now()
        with self._d.engine.begin() as conn:
            done = conn.execute(
                update(tp)
                .where(tp.c.id == principal_id)
                .values(totp_secret=enrolment.secret, totp_last_step=None, updated_at=now)
            )
            if not done.rowcount:
                raise NotFound(f"no principal {principal_id!r}")
        self._d.events.emit(event("mfa.enrolled", now, actor_of(by), target=principal_id, detail={"method": "totp"}))
        return enrolment

    def failures(self, principal_id: str) -> int:
        """Failed attempts counted within the lockout window now."""
        with self._d.engine.connect() as conn:
            return _count(conn, principal_id, self._d.now() - self._d.auth.lockout.window)

    def _check_state(self, p: Principal, now: datetime, client: Client) -> Principal:
        state = p.state_at(now)
        if state is AccountState.DISABLED:
            self._fail("login.failure", p.id, "disabled", client)
            raise AccountLocked("disabled", "the account is disabled")
        if state is AccountState.LOCKED:
            until = p.lock.until if p.lock else None
            self._fail("login.failure", p.id, "locked", client, {"until": iso(until)})
            raise AccountLocked("locked", "the account is locked")
        if p.state is AccountState.LOCKED:  # a temporary lock whose period is over
            with self._d.engine.begin() as conn:
                clear_lock(conn, p.id, now)
            self._d.events.emit(
                event("account.unlocked", now, Actor(principal_id=SYSTEM), target=p.id, detail={"automatic": True})
            )
        return p

    def _count_failure(self, p: Principal, reason: str, client: Client, event_type: str = "login.failure") -> None:
        now = self._d.now()
        lockout = self._d.auth.lockout
        with self._d.engine.begin() as conn:
            conn.execute(tf.insert().values(principal_id=p.id, at=now, reason=reason))
            failures = _count(conn, p.id, now - lockout.window)
            lock_until = now + lockout.duration if failures > lockout.max_failures else None
            if lock_until is not None:
                set_lock(
                    conn, p.id, now, reason=f"{failures} failed attempts", by=SYSTEM, until=lock_until, automatic=True
                )
                conn.execute(delete(tf).where(tf.c.principal_id == p.id))
        self._fail(event_type, p.id, reason, client, {"failures": failures})
        if lock_until is not None:
            self._d.events.emit(
                locked_event(
                    now, Actor(principal_id=SYSTEM), p.id, f"{failures} failed attempts", lock_until, automatic=True
                )
            )

    def _after_success(self, principal_id: str, row: Row[Any], password: str) -> None:
        rehash = self._vault.needs_rehash(row.password_hash)
        with self._d.engine.begin() as conn:
            conn.execute(delete(tf).where(tf.c.principal_id == principal_id))
            if rehash:
                conn.execute(update(tp).where(tp.c.id == principal_id).values(password_hash=self._vault.hash(password)))

    def _fail(
        self, type_: str, principal_id: str | None, reason: str, client: Client, extra: dict[str, Any] | None = None
    ) -> None:
        actor = Actor(principal_id=principal_id, ip=client.ip, device_id=client.device_id, user_agent=client.user_agent)
        self._d.events.emit(
            event(
                type_,
                self._d.now(),
                actor,
                target=principal_id,
                outcome=Outcome.FAILURE,
                detail={"reason": reason, **(extra or {})},
            )
        )


def _count(conn: Connection, principal_id: str, since: datetime) -> int:
    query = select(func.count()).select_from(tf).where(tf.c.principal_id == principal_id, tf.c.at > since)
    return int(conn.execute(query).scalar_one())
