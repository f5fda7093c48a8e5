"""The directory's values: principals, account states, assignments, delegations,
sessions and API tokens, and who performs an administrative change."""

from __future__ import annotations

import getpass
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from pacsguard.domain import Action, Actor, AuthStrength, RoleRef, Validity

__all__ = [
    "AccountState",
    "Acting",
    "Assignment",
    "By",
    "Client",
    "Delegation",
    "Device",
    "IssuedSession",
    "IssuedToken",
    "Lock",
    "Operator",
    "Principal",
    "PrincipalKind",
    "SessionInfo",
    "TokenInfo",
    "TotpEnrolment",
    "actor_of",
]


class PrincipalKind(StrEnum):
    """What a principal is. There is no group or shared kind: one principal, one party."""

    PERSON = "person"
    DEVICE = "device"
    APPLICATION = "application"


class AccountState(StrEnum):
    ACTIVE = "active"
    LOCKED = "locked"
    DISABLED = "disabled"


@dataclass(frozen=True, slots=True)
class Device:
    """A DICOM application entity: AE title, host, and its client certificate."""

    ae_title: str
    host: str | None = None
    cert_fingerprint: str | None = None  # SHA-256, lower-case hex without colons
    cert_subject: str | None = None


@dataclass(frozen=True, slots=True)
class Lock:
    """Why and by whom an account is locked; ``until`` is set for a temporary lockout."""

    reason: str
    by: str
    at: datetime
    until: datetime | None = None
    automatic: bool = False


@dataclass(frozen=True, slots=True)
class Principal:
    """A person, device or application with one unique id."""

    id: str
    kind: PrincipalKind
    display_name: str
    zone: str
    state: AccountState
    created_at: datetime
    created_by: str
    email: str | None = None
    device: Device | None = None
    lock: Lock | None = None
    has_password: bool = False
    mfa_enrolled: bool = False

    def state_at(self, now: datetime) -> AccountState:
        """The state at ``now``: a temporary lock whose period is over counts as active."""
        if self.state is AccountState.LOCKED and self.lock and self.lock.until and self.lock.until <= now:
            return AccountState.ACTIVE
        return self.state


@dataclass(frozen=True, slots=True)
class Assignment:
    """A role held by a principal for a validity period, assigned by someone with the right."""

    id: str
    principal_id: str
    role: RoleRef
    validity: Validity
    assigned_by: str
    assigned_at: datetime
    revoked_at: datetime | None = None
    revoked_by: str | None = None

    def active(self, now: datetime) -> bool:
        return self.revoked_at is None and self.validity.contains(now)


@dataclass(frozen=True, slots=True)
class Delegation:
    """A role, or some of its actions, passed from one principal to another for a period.

    ``parent_id`` is the delegation it was made from (``None`` when made from the
    assignment ``assignment_id`` directly); ``chain`` lists the assignment id then the
    delegation ids down to this one, oldest first.
    """

    id: str
    assignment_id: str
    parent_id: str | None
    from_principal: str
    to_principal: str
    role: RoleRef
    actions: frozenset[Action] | None
    validity: Validity
    may_redelegate: bool
    created_at: datetime
    chain: tuple[str, ...] = ()
    revoked_at: datetime | None = None
    revoked_by: str | None = None


@dataclass(frozen=True, slots=True)
class Client:
    """Where a request comes from: IP address, device id and user agent."""

    ip: str | None = None
    device_id: str | None = None
    user_agent: str | None = None


@dataclass(frozen=True, slots=True)
class SessionInfo:
    """A login session (never its secret)."""

    id: str
    principal_id: str
    auth_strength: AuthStrength
    client: Client
    created_at: datetime
    last_seen_at: datetime
    ended_at: datetime | None = None
    end_reason: str | None = None


@dataclass(frozen=True, slots=True)
class IssuedSession:
    """A new session: ``secret`` is shown once to the client and stored only hashed."""

    secret: str
    session: SessionInfo


@dataclass(frozen=True, slots=True)
class TokenInfo:
    """An API token (never its secret)."""

    id: str
    principal_id: str
    name: str
    scopes: frozenset[str]
    created_at: datetime
    expires_at: datetime
    revoked_at: datetime | None = None
    last_used_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class IssuedToken:
    """A new API token: ``secret`` is shown once and stored only hashed."""

    secret: str
    token: TokenInfo


@dataclass(frozen=True, slots=True)
class TotpEnrolment:
    """A TOTP secret and its ``otpauth://`` provisioning URI, shown once."""

    secret: str
    provisioning_uri: str


@dataclass(frozen=True, slots=True)
class Operator:
    """The local site operator (the CLI run on the site): the root of attestation."""

    os_user: str

    @property
    def id(self) -> str:
        return f"operator:{self.os_user}"

    @classmethod
    def current(cls) -> Operator:
        """The operator running this process."""
        try:
            return cls(getpass.getuser())
        except (KeyError, OSError):
            return cls("unknown")


@dataclass(frozen=True, slots=True)
class Acting:
    """A principal performing an administrative change, with where it came from."""

    principal_id: str
    session_id: str | None = None
    client: Client = Client()


By = Operator | Acting | str
"""Who performs a change: the local operator, a principal (with context) or a principal id."""


def actor_of(by: By, session_strength: AuthStrength | None = None) -> Actor:
    """The audit ``Actor`` for whoever performs a change."""
    if isinstance(by, Operator):
        return Actor(principal_id=by.id)
    acting = Acting(by) if isinstance(by, str) else by
    c = acting.client
    return Actor(
        principal_id=acting.principal_id,
        session_id=acting.session_id,
        ip=c.ip,
        device_id=c.device_id,
        user_agent=c.user_agent,
        auth_strength=int(session_strength) if session_strength is not None else None,
    )
