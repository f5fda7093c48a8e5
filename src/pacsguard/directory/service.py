"""The directory as one object: principals, assignments, delegations, authentication,
sessions and tokens over one database, and the policy seam value ``Subject``."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from argon2 import PasswordHasher
from sqlalchemy import Engine, select

from pacsguard.clock import Clock, SystemClock, utc
from pacsguard.config import AuthSettings
from pacsguard.directory._common import Deps
from pacsguard.directory._roles import held_roles
from pacsguard.directory.assignments import Assignments
from pacsguard.directory.authn import Authenticator
from pacsguard.directory.certificates import ClientCertificateVerifier
from pacsguard.directory.consents import Consents
from pacsguard.directory.delegations import Delegations
from pacsguard.directory.external import ExternalLogin
from pacsguard.directory.model import By, Client
from pacsguard.directory.oidc import OidcVerifier
from pacsguard.directory.passwords import PasswordVault
from pacsguard.directory.principals import Principals, to_principal
from pacsguard.directory.sessions import Sessions, blocked_account
from pacsguard.directory.tokens import Tokens
from pacsguard.domain import AuthStrength, EventSink, Subject, ZoneTree
from pacsguard.errors import AccountLocked, NotFound
from pacsguard.storage.directory_tables import principals as tp

__all__ = ["Containment", "Directory"]


@dataclass(frozen=True, slots=True)
class Containment:
    """What ``Directory.contain`` changed: the lock, and how many sessions and tokens ended."""

    locked: bool
    sessions_ended: int
    tokens_revoked: int


class Directory:
    """Everything the directory does, reporting every outcome to ``events``.

    The parts are attributes: ``principals``, ``assignments``, ``delegations``,
    ``auth`` (passwords, lockout, TOTP, login), ``external`` (client certificates and
    OIDC bearer tokens), ``sessions``, ``tokens`` and patients' ``consents``.
    ``engine`` must be migrated (``storage.migrate``).
    """

    def __init__(
        self,
        engine: Engine,
        zones: ZoneTree,
        auth: AuthSettings,
        events: EventSink,
        clock: Clock | None = None,
        *,
        password_hasher: PasswordHasher | None = None,
        certificates: ClientCertificateVerifier | None = None,
        oidc: OidcVerifier | None = None,
    ) -> None:
        self._deps = Deps(engine, zones, auth, events, clock or SystemClock())
        self.principals = Principals(self._deps)
        self.assignments = Assignments(self._deps)
        self.delegations = Delegations(self._deps)
        self.sessions = Sessions(self._deps)
        self.tokens = Tokens(self._deps)
        self.auth = Authenticator(self._deps, self.sessions, PasswordVault(password_hasher))
        self.external = ExternalLogin(self._deps, self.sessions, certificates, oidc)
        self.consents = Consents(self._deps)

    @property
    def zones(self) -> ZoneTree:
        return self._deps.zones

    def subject(
        self, principal_id: str, now: datetime | None = None, auth_strength: AuthStrength = AuthStrength.NONE
    ) -> Subject:
        """The principal with the roles it holds at ``now`` (assignments, then delegations).

        Expired or revoked assignments and delegations never appear; a delegation carries
        its effective period, its actions and its chain. Junior roles are not expanded
        (``ZoneTree.expand_role`` does that). Raises ``NotFound``, or ``AccountLocked``
        when the account is disabled or locked by an officer.
        """
        at = utc(now) if now is not None else self._deps.now()
        with self._deps.engine.connect() as conn:
            row = conn.execute(select(tp).where(tp.c.id == principal_id)).first()
            if row is None:
                raise NotFound(f"no principal {principal_id!r}")
            blocked = blocked_account(row, at)
            if blocked is not None:
                raise AccountLocked(blocked, f"the account {principal_id!r} may not act now")
            roles = held_roles(conn, principal_id, at)
        principal = to_principal(row)
        return Subject(principal.id, principal.zone, tuple(roles), auth_strength, principal.kind.value)

    def contain(self, principal_id: str, *, reason: str, by: By) -> Containment:
        """Lock the account, end all its sessions and revoke all its API tokens.

        Idempotent: repeating it changes nothing and emits nothing new. Raises ``NotFound``.
        """
        locked = self.principals.lock(principal_id, reason=reason, by=by)
        sessions = self.sessions.revoke_all(principal_id, by=by, reason=f"contained: {reason}")
        tokens = self.tokens.revoke_all(principal_id, by=by)
        return Containment(locked, sessions, tokens)

    def session_subject(self, secret: str, client: Client | None = None) -> Subject:
        """Validate a session secret and return its subject at its authentication strength.

        Raises ``TokenError`` (see ``Sessions.validate``), ``NotFound`` or ``AccountLocked``.
        """
        session = self.sessions.validate(secret, client)
        return self.subject(session.principal_id, auth_strength=session.auth_strength)
