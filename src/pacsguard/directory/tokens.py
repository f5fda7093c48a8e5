"""API tokens: opaque bearer secrets (``pgt_`` + 256 random bits), kept only as SHA-256,
scoped, with an expiry no later than the site allows, revocable one by one or all at once."""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Row, select, update

from pacsguard.directory._common import Deps, digest, event, iso, new_id, when
from pacsguard.directory.model import By, Client, IssuedToken, TokenInfo, actor_of
from pacsguard.directory.sessions import TOUCH_EVERY, blocked_account
from pacsguard.domain import Actor, Outcome
from pacsguard.errors import InvalidEntry, NotFound, TokenError
from pacsguard.storage.directory_tables import api_tokens as tt
from pacsguard.storage.directory_tables import principals as tp

__all__ = ["PREFIX", "Tokens"]

PREFIX = "pgt_"
SCOPE = re.compile(r"^[a-z][a-z0-9_.:-]{0,63}$")


def to_token(row: Row[Any]) -> TokenInfo:
    r = row._mapping
    return TokenInfo(
        id=r["id"],
        principal_id=r["principal_id"],
        name=r["name"],
        scopes=frozenset(r["scopes"]),
        created_at=when(r["created_at"]),  # type: ignore[arg-type]
        expires_at=when(r["expires_at"]),  # type: ignore[arg-type]
        revoked_at=when(r["revoked_at"]),
        last_used_at=when(r["last_used_at"]),
    )


class Tokens:
    """Issue, validate, list and revoke API tokens."""

    def __init__(self, deps: Deps) -> None:
        self._d = deps

    def issue(
        self, principal_id: str, *, name: str, scopes: Iterable[str], by: By, expires_in: timedelta | None = None
    ) -> IssuedToken:
        """A new token for a principal; raises ``NotFound`` or ``InvalidEntry`` (scope, expiry)."""
        wanted = frozenset(scopes)
        bad = sorted(s for s in wanted if not SCOPE.match(s))
        if not wanted or bad:
            raise InvalidEntry(f"bad scopes {bad or '(none)'}: name at least one, such as 'query' or 'read'")
        limit = timedelta(days=self._d.auth.api_token_max_days)
        lifetime = expires_in if expires_in is not None else limit
        if not timedelta(0) < lifetime <= limit:
            raise InvalidEntry(f"a token lives more than 0 and at most {self._d.auth.api_token_max_days} days")
        now, actor = self._d.now(), actor_of(by)
        secret = PREFIX + secrets.token_urlsafe(32)
        info = TokenInfo(new_id("t"), principal_id, name, wanted, now, now + lifetime)
        with self._d.engine.begin() as conn:
            if conn.execute(select(tp.c.id).where(tp.c.id == principal_id)).first() is None:
                raise NotFound(f"no principal {principal_id!r}")
            conn.execute(
                tt.insert().values(
                    id=info.id,
                    token_hash=digest(secret),
                    principal_id=principal_id,
                    name=name,
                    scopes=sorted(wanted),
                    created_at=now,
                    created_by=actor.principal_id or "",
                    expires_at=info.expires_at,
                )
            )
        detail = {"token": info.id, "name": name, "scopes": sorted(wanted), "expires_at": iso(info.expires_at)}
        self._d.events.emit(event("token.created", now, actor, target=principal_id, detail=detail))
        return IssuedToken(secret, info)

    def validate(self, secret: str, *, scope: str | None = None, client: Client | None = None) -> TokenInfo:
        """The token for ``secret``, if live, of an usable account, and carrying ``scope``.

        Raises ``TokenError`` (reason ``malformed``, ``unknown_token``, ``revoked``,
        ``expired``, ``scope``, ``account_locked``, ``account_disabled``) after emitting
        ``token.rejected``.
        """
        now = self._d.now()
        token: TokenInfo | None = None
        reason: str | None = "malformed"
        if secret.startswith(PREFIX):
            with self._d.engine.begin() as conn:
                row = conn.execute(select(tt).where(tt.c.token_hash == digest(secret))).first()
                token = to_token(row) if row else None
                reason = _refusal(token, now, scope)
                if token is not None and reason is None:
                    owner = conn.execute(select(tp).where(tp.c.id == token.principal_id)).first()
                    reason = blocked_account(owner, now)
                if token is not None and reason is None and _stale(token.last_used_at, now):
                    conn.execute(update(tt).where(tt.c.id == token.id).values(last_used_at=now))
        if token is not None and reason is None:
            return token
        self._reject(token, reason or "unknown_token", scope, now, client or Client())
        raise TokenError(reason or "unknown_token", "the API token is not valid for this request")

    def _reject(self, token: TokenInfo | None, reason: str, scope: str | None, now: datetime, client: Client) -> None:
        actor = Actor(
            principal_id=token.principal_id if token else None,
            ip=client.ip,
            device_id=client.device_id,
            user_agent=client.user_agent,
        )
        detail = {"kind": "api_token", "reason": reason, "token": token.id if token else None, "scope": scope}
        self._d.events.emit(
            event(
                "token.rejected",
                now,
                actor,
                target=token.principal_id if token else None,
                outcome=Outcome.FAILURE,
                detail=detail,
            )
        )

    def get(self, token_id: str) -> TokenInfo:
        """One token by its public id; raises ``NotFound``."""
        with self._d.engine.connect() as conn:
            row = conn.execute(select(tt).where(tt.c.id == token_id)).first()
        if row is None:
            raise NotFound(f"no API token {token_id!r}")
        return to_token(row)

    def of(self, principal_id: str) -> list[TokenInfo]:
        """A principal's tokens, oldest first."""
        query = select(tt).where(tt.c.principal_id == principal_id).order_by(tt.c.created_at, tt.c.id)
        with self._d.engine.connect() as conn:
            return [to_token(r) for r in conn.execute(query)]

    def revoke(self, token_id: str, *, by: By) -> bool:
        """Revoke one token; ``False`` if it was revoked already. Raises ``NotFound``."""
        return self._revoke([self.get(token_id)], by) == 1

    def revoke_all(self, principal_id: str, *, by: By) -> int:
        """Revoke every unrevoked token of a principal; returns how many (0 is fine)."""
        return self._revoke(self.of(principal_id), by)

    def _revoke(self, tokens: list[TokenInfo], by: By) -> int:
        now, actor = self._d.now(), actor_of(by)
        done = []
        with self._d.engine.begin() as conn:
            for t in tokens:
                result = conn.execute(
                    update(tt).where(tt.c.id == t.id, tt.c.revoked_at.is_(None)).values(revoked_at=now)
                )
                if result.rowcount:
                    done.append(t)
        for t in done:
            self._d.events.emit(event("token.revoked", now, actor, target=t.principal_id, detail={"token": t.id}))
        return len(done)


def _refusal(token: TokenInfo | None, now: datetime, scope: str | None) -> str | None:
    if token is None:
        return "unknown_token"
    if token.revoked_at is not None:
        return "revoked"
    if now >= token.expires_at:
        return "expired"
    if scope is not None and scope not in token.scopes:
        return "scope"
    return None


def _stale(last_used: datetime | None, now: datetime) -> bool:
    """Record a use at most every ``TOUCH_EVERY``: a busy token would otherwise make every
    request a write transaction."""
    return last_used is None or now - last_used >= TOUCH_EVERY
