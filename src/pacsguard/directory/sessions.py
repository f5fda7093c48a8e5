"""Login sessions: a secret from ``secrets`` kept only as its SHA-256, the authentication
strength, client IP, device id and user agent; idle and absolute timeouts; revocation one
by one or all at once (idempotent, for containment)."""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Row, select, update

from pacsguard.directory._common import Deps, digest, event, new_id, when
from pacsguard.directory.model import AccountState, By, Client, IssuedSession, SessionInfo, actor_of
from pacsguard.directory.principals import to_principal
from pacsguard.domain import Actor, AuthStrength, Outcome
from pacsguard.errors import NotFound, TokenError
from pacsguard.storage.directory_tables import auth_sessions as ts
from pacsguard.storage.directory_tables import principals as tp

__all__ = ["Sessions", "blocked_account"]

TOUCH_EVERY = timedelta(seconds=30)  # bounds the writes a busy session causes


def to_session(row: Row[Any]) -> SessionInfo:
    r = row._mapping
    return SessionInfo(
        id=r["id"],
        principal_id=r["principal_id"],
        auth_strength=AuthStrength(r["auth_strength"]),
        client=Client(r["ip"], r["device_id"], r["user_agent"]),
        created_at=when(r["created_at"]),  # type: ignore[arg-type]
        last_seen_at=when(r["last_seen_at"]),  # type: ignore[arg-type]
        ended_at=when(r["ended_at"]),
        end_reason=r["end_reason"],
    )


def session_actor(s: SessionInfo) -> Actor:
    return Actor(
        principal_id=s.principal_id,
        session_id=s.id,
        ip=s.client.ip,
        device_id=s.client.device_id,
        user_agent=s.client.user_agent,
        auth_strength=int(s.auth_strength),
    )


def blocked_account(row: Row[Any] | None, now: datetime) -> str | None:
    """Why an account may not use its sessions and tokens: gone, disabled, or locked by an
    officer. An automatic lockout only stops new logins, so an attacker guessing
    passwords cannot throw the owner out."""
    if row is None:
        return "unknown_principal"
    p = to_principal(row)
    state = p.state_at(now)
    if state is AccountState.DISABLED:
        return "account_disabled"
    if state is AccountState.LOCKED and p.lock is not None and not p.lock.automatic:
        return "account_locked"
    return None


class Sessions:
    """Create, validate, list and revoke sessions."""

    def __init__(self, deps: Deps) -> None:
        self._d = deps

    def create(self, principal_id: str, strength: AuthStrength, client: Client | None = None) -> IssuedSession:
        """Open a session for an authenticated principal; emits ``session.created``."""
        now, client = self._d.now(), client or Client()
        secret = secrets.token_urlsafe(32)
        info = SessionInfo(new_id("s"), principal_id, strength, client, now, now)
        with self._d.engine.begin() as conn:
            conn.execute(
                ts.insert().values(
                    id=info.id,
                    token_hash=digest(secret),
                    principal_id=principal_id,
                    auth_strength=int(strength),
                    ip=client.ip,
                    device_id=client.device_id,
                    user_agent=client.user_agent,
                    created_at=now,
                    last_seen_at=now,
                )
            )
        self._d.events.emit(
            event(
                "session.created",
                now,
                session_actor(info),
                target=principal_id,
                detail={"auth_strength": int(strength)},
            )
        )
        return IssuedSession(secret, info)

    def validate(self, secret: str, client: Client | None = None) -> SessionInfo:
        """The live session for ``secret``, its last use updated.

        Raises ``TokenError`` (reason ``unknown_session``, ``session_ended``,
        ``session_expired``, ``account_locked``, ``account_disabled``); every refusal is
        emitted (``token.rejected``, or ``session.expired`` when a timeout ends it).
        """
        now, client = self._d.now(), client or Client()
        with self._d.engine.begin() as conn:
            row = conn.execute(select(ts).where(ts.c.token_hash == digest(secret))).first()
            session = to_session(row) if row else None
            reason = self._refusal(session, now)
            if session is not None and reason in ("idle_timeout", "absolute_timeout"):
                conn.execute(update(ts).where(ts.c.id == session.id).values(ended_at=now, end_reason=reason))
            if session is not None and reason is None:
                owner = conn.execute(select(tp).where(tp.c.id == session.principal_id)).first()
                reason = blocked_account(owner, now)
            if session is not None and reason is None and now - session.last_seen_at >= TOUCH_EVERY:
                conn.execute(update(ts).where(ts.c.id == session.id).values(last_seen_at=now))
        if reason is None and session is not None:
            return session
        self._emit_refusal(session, reason or "unknown_session", now, client)
        code = "session_expired" if reason in ("idle_timeout", "absolute_timeout") else reason or "unknown_session"
        raise TokenError(code, "the session is not valid; log in again")

    def _refusal(self, s: SessionInfo | None, now: datetime) -> str | None:
        if s is None:
            return "unknown_session"
        if s.ended_at is not None:
            return "session_ended"
        settings = self._d.auth.session
        if now - s.created_at >= settings.absolute_timeout:
            return "absolute_timeout"
        if now - s.last_seen_at >= settings.idle_timeout:
            return "idle_timeout"
        return None

    def _emit_refusal(self, s: SessionInfo | None, reason: str, now: datetime, client: Client) -> None:
        if s is not None and reason in ("idle_timeout", "absolute_timeout"):
            self._d.events.emit(
                event("session.expired", now, session_actor(s), target=s.principal_id, detail={"reason": reason})
            )
            return
        actor = session_actor(s) if s else Actor(ip=client.ip, device_id=client.device_id, user_agent=client.user_agent)
        self._d.events.emit(
            event(
                "token.rejected",
                now,
                actor,
                target=s.principal_id if s else None,
                outcome=Outcome.FAILURE,
                detail={"kind": "session", "reason": reason},
            )
        )

    def get(self, session_id: str) -> SessionInfo:
        """One session by its public id; raises ``NotFound``."""
        with self._d.engine.connect() as conn:
            row = conn.execute(select(ts).where(ts.c.id == session_id)).first()
        if row is None:
            raise NotFound(f"no session {session_id!r}")
        return to_session(row)

    def of(self, principal_id: str, *, live_only: bool = True) -> list[SessionInfo]:
        """A principal's sessions (not ended ones only, by default), oldest first."""
        query = select(ts).where(ts.c.principal_id == principal_id).order_by(ts.c.created_at, ts.c.id)
        if live_only:
            query = query.where(ts.c.ended_at.is_(None))
        with self._d.engine.connect() as conn:
            return [to_session(r) for r in conn.execute(query)]

    def revoke(self, session_id: str, *, by: By, reason: str = "revoked") -> bool:
        """End one session; ``False`` if it had ended already. Raises ``NotFound``."""
        session = self.get(session_id)
        return self._end([session], by, reason) == 1

    def revoke_all(self, principal_id: str, *, by: By, reason: str = "revoked") -> int:
        """End every live session of a principal; returns how many were ended (0 is fine)."""
        return self._end(self.of(principal_id), by, reason)

    def _end(self, sessions: list[SessionInfo], by: By, reason: str) -> int:
        now, actor = self._d.now(), actor_of(by)
        ended = []
        with self._d.engine.begin() as conn:
            for s in sessions:
                result = conn.execute(
                    update(ts).where(ts.c.id == s.id, ts.c.ended_at.is_(None)).values(ended_at=now, end_reason=reason)
                )
                if result.rowcount:
                    ended.append(s)
        for s in ended:
            self._d.events.emit(
                event("session.revoked", now, actor, target=s.principal_id, detail={"session": s.id, "reason": reason})
            )
        return len(ended)
