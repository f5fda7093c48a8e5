"""Containment playbooks: the actions that stop an attack, in one declared registry.

Every action is idempotent (a repeat changes nothing and records nothing), recorded as a
``containment.<action>`` audit event naming the rule (``rule:<id>``) or the person who
ordered it, and undone only by an authorised security officer (``containment.undone``).
Automatic containment never locks out the last active security officer
(``containment.refused``). Events are emitted after each change is committed, never
while a write transaction is open.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from sqlalchemy import Engine, delete, insert, select

from pacsguard.clock import Clock, utc
from pacsguard.directory import Directory, PrincipalKind
from pacsguard.domain.events import Actor, AuditEvent, EventSink, ObjectRef, Outcome
from pacsguard.errors import AccountLocked, ContainmentError, ContainmentRefused, NotFound
from pacsguard.storage.monitor_tables import monitor_blocked_ips as tb
from pacsguard.storage.monitor_tables import monitor_containments as tc

__all__ = [
    "OFFICER_ROLE",
    "PLAYBOOKS",
    "ActiveContainment",
    "Containment",
    "IpBlocks",
    "Playbook",
    "ShareLinks",
    "containment_id",
    "is_active_officer",
]

OFFICER_ROLE = "security-officer"
DEFAULT_BLOCK = timedelta(hours=1)


class ShareLinks(Protocol):
    """What share-link storage provides to containment (``gateway.shares.ShareStore``;
    without one, ``expire_shares`` reports that it cannot run)."""

    def expire_all(self, principal_id: str, *, by: str, reason: str) -> int:
        """Expire every live share link the principal created; returns how many."""
        ...

    def reinstate(self, principal_id: str, *, by: str) -> int:
        """Bring back the links the last ``expire_all`` ended; returns how many."""
        ...


class IpBlocks:
    """Blocked IP addresses with an end time; the gateway calls ``is_blocked``."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._engine = engine

    def is_blocked(self, ip: str, now: datetime) -> bool:
        """True while a block on ``ip`` is in force at ``now``."""
        with self._engine.connect() as conn:
            until = conn.execute(select(tb.c.until).where(tb.c.ip == ip)).scalar_one_or_none()
        return until is not None and utc(until) > utc(now)

    def block(self, ip: str, *, until: datetime, reason: str, by: str, now: datetime) -> bool:
        """Block ``ip`` until ``until``; ``False`` if a block at least that long exists."""
        with self._engine.begin() as conn:
            current = conn.execute(select(tb.c.until).where(tb.c.ip == ip)).scalar_one_or_none()
            if current is not None and utc(current) >= until:
                return False
            conn.execute(delete(tb).where(tb.c.ip == ip))
            conn.execute(tb.insert().values(ip=ip, until=until, reason=reason, ordered_by=by, created_at=now))
        return True

    def unblock(self, ip: str) -> bool:
        """Lift the block; ``False`` if there was none."""
        with self._engine.begin() as conn:
            return bool(conn.execute(delete(tb).where(tb.c.ip == ip)).rowcount)


@dataclass(frozen=True, slots=True)
class ActiveContainment:
    """A containment in force: which action on which target, ordered by whom, since when."""

    action: str
    target: str
    ordered_by: str
    reason: str
    since: datetime

    @property
    def id(self) -> str:
        """The public id (``containment_id`` of action and target)."""
        return containment_id(self.action, self.target)


def containment_id(action: str, target: str) -> str:
    """A stable id for the containment ``action`` on ``target`` (at most one is in force)."""
    return "ctn-" + hashlib.sha256(f"{action}\0{target}".encode()).hexdigest()[:16]


def is_active_officer(directory: Directory, principal_id: str) -> bool:
    """True if ``principal_id`` is an active principal holding the security-officer role now."""
    try:
        subject = directory.subject(principal_id)
    except (NotFound, AccountLocked):
        return False
    return subject.holds(OFFICER_ROLE)


@dataclass(frozen=True, slots=True)
class Playbook:
    """One containment action: its name (as rules name it), what it does, what it targets,
    and the audit event type that records it (``audit.event_types``)."""

    name: str
    summary: str
    target: str  # "principal", "ip" or "device"
    event: str
    timed: bool = False  # takes an end time (``until``)


PLAYBOOKS: dict[str, Playbook] = {
    p.name: p
    for p in (
        Playbook(
            "lock_account",
            "Lock the account until an officer unlocks it (or until a time).",
            "principal",
            "containment.account_locked",
            timed=True,
        ),
        Playbook(
            "revoke_sessions",
            "End every session and revoke every API token of the account.",
            "principal",
            "containment.sessions_revoked",
        ),
        Playbook(
            "expire_shares",
            "Expire every live share link the account created.",
            "principal",
            "containment.shares_expired",
        ),
        Playbook(
            "block_ip",
            "Refuse requests from the IP address for a period (one hour by default).",
            "ip",
            "containment.ip_blocked",
            timed=True,
        ),
        Playbook(
            "suspend_device",
            "Lock the device principal (DICOM AE) so it can no longer connect.",
            "device",
            "containment.device_suspended",
            timed=True,
        ),
        Playbook(
            "require_mfa_reenrolment",
            "Replace the TOTP secret with one nobody holds: login needs a code until an officer re-enrols.",
            "principal",
            "containment.mfa_reset",
        ),
    )
}


class Containment:
    """Runs and undoes playbooks against the directory, the IP blocks and share links."""

    def __init__(
        self,
        directory: Directory,
        blocks: IpBlocks,
        events: EventSink,
        clock: Clock,
        *,
        shares: ShareLinks | None = None,
        block_for: timedelta = DEFAULT_BLOCK,
    ) -> None:
        self._dir = directory
        self.blocks = blocks
        self._events = events
        self._clock = clock
        self._shares = shares
        self._block_for = block_for
        self._apply: dict[str, Callable[[str, str, str, datetime | None], bool]] = {
            "lock_account": self._lock,
            "revoke_sessions": self._revoke,
            "expire_shares": self._expire,
            "block_ip": self._block,
            "suspend_device": self._lock,
            "require_mfa_reenrolment": self._require_mfa,
        }
        self._undo: dict[str, Callable[[str, str], bool]] = {
            "lock_account": self._unlock,
            "revoke_sessions": lambda _t, _b: False,  # ended sessions stay ended: the user logs in again
            "expire_shares": self._reinstate,
            "block_ip": lambda t, _b: self.blocks.unblock(t),
            "suspend_device": self._unlock,
            # the record is lifted; the user logs in again once an officer runs 'pacsguard users mfa-enroll'
            "require_mfa_reenrolment": lambda t, _b: self._in_force("require_mfa_reenrolment", t),
        }
        self._engine = blocks.engine

    def apply(self, action: str, target: str, *, ordered_by: str, reason: str, until: datetime | None = None) -> bool:
        """Run ``action`` on ``target``; ``ordered_by`` is ``rule:<id>`` or an officer's id;
        ``until`` ends a lock, a device suspension or an IP block at that time.

        Returns whether anything changed. Raises ``ContainmentError`` (unknown action or
        target, share links not available, ``until`` not in the future or not for this
        action) or ``ContainmentRefused`` (automatic lock of the last active security officer).
        """
        playbook = _playbook(action)
        if until is not None and (not playbook.timed or until <= self._clock.now()):
            timed = ", ".join(p.name for p in PLAYBOOKS.values() if p.timed)
            raise ContainmentError(f"{action}: 'until' must be a future time, and only {timed} take one")
        if ordered_by.startswith("rule:") and playbook.target != "ip":
            self._guard_last_officer(action, target, ordered_by)
        try:
            changed = self._apply[action](target, ordered_by, reason, until)
        except NotFound as exc:
            raise ContainmentError(f"{action}: {exc}") from exc
        if changed:
            self._remember(action, target, ordered_by, reason)
            detail = {"reason": reason, "target": target, **({"until": until.isoformat()} if until else {})}
            self._record(playbook.event, target, ordered_by, {"action": action, **detail})
        return changed

    def undo(self, action: str, target: str, *, officer: str) -> bool:
        """Undo ``action`` on ``target``; only an active security officer may.

        Returns whether anything changed. Raises ``ContainmentError``.
        """
        _playbook(action)
        if not self._is_officer(officer):
            raise ContainmentError(f"{officer!r} is not an active {OFFICER_ROLE}: only an officer may undo containment")
        changed = self._undo[action](target, officer)
        changed = self._forget(action, target) or changed
        if changed:
            self._record("containment.undone", target, officer, {"action": action, "target": target})
        return changed

    def active(self) -> list[ActiveContainment]:
        """Containments applied and not undone, oldest first."""
        with self._engine.connect() as conn:
            rows = conn.execute(select(tc).order_by(tc.c.since))
            return [ActiveContainment(r.action, r.target, r.ordered_by, r.reason, utc(r.since)) for r in rows]

    def _in_force(self, action: str, target: str) -> bool:
        with self._engine.connect() as conn:
            query = select(tc.c.since).where(tc.c.action == action, tc.c.target == target)
            return conn.execute(query).first() is not None

    def _remember(self, action: str, target: str, by: str, reason: str) -> None:
        self._forget(action, target)
        with self._engine.begin() as conn:
            row = {"action": action, "target": target, "ordered_by": by, "reason": reason[:500]}
            conn.execute(insert(tc).values(**row, since=self._clock.now()))

    def _forget(self, action: str, target: str) -> bool:
        with self._engine.begin() as conn:
            return bool(conn.execute(delete(tc).where(tc.c.action == action, tc.c.target == target)).rowcount)

    def _require_mfa(self, target: str, by: str, reason: str, until: datetime | None) -> bool:
        if self._in_force("require_mfa_reenrolment", target):
            return False
        # The new secret is dropped here: nobody holds it, so the login path refuses every
        # code until an officer enrols a new authenticator and hands it over.
        self._dir.auth.enroll_totp(target, by=by)
        return True

    def _lock(self, target: str, by: str, reason: str, until: datetime | None) -> bool:
        return self._dir.principals.lock(target, reason=reason, by=by, until=until)

    def _unlock(self, target: str, by: str) -> bool:
        return self._dir.principals.unlock(target, by=by)

    def _revoke(self, target: str, by: str, reason: str, until: datetime | None) -> bool:
        self._dir.principals.get(target)
        sessions = self._dir.sessions.revoke_all(target, by=by, reason=f"contained: {reason}")
        tokens = self._dir.tokens.revoke_all(target, by=by)
        return bool(sessions or tokens)

    def _expire(self, target: str, by: str, reason: str, until: datetime | None) -> bool:
        if self._shares is None:
            raise ContainmentError("expire_shares: this site stores no share links yet (no share store wired)")
        return bool(self._shares.expire_all(target, by=by, reason=reason))

    def _reinstate(self, target: str, by: str) -> bool:
        if self._shares is None:
            raise ContainmentError("expire_shares: this site stores no share links yet (no share store wired)")
        return bool(self._shares.reinstate(target, by=by))

    def _block(self, target: str, by: str, reason: str, until: datetime | None) -> bool:
        now = self._clock.now()
        until = until or now + self._block_for
        return self.blocks.block(target, until=until, reason=reason, by=by, now=now)

    def _guard_last_officer(self, action: str, target: str, ordered_by: str) -> None:
        if not self._is_officer(target):
            return
        others = [p.id for p in self._dir.principals.list(kind=PrincipalKind.PERSON) if p.id != target]
        if any(self._is_officer(pid) for pid in others):
            return
        self._record(
            "containment.refused",
            target,
            ordered_by,
            {"action": action, "target": target, "reason": "last active security officer"},
            Outcome.DENIED,
        )
        raise ContainmentRefused(f"{action} on {target!r} refused: the last active {OFFICER_ROLE} is never locked")

    def _is_officer(self, principal_id: str) -> bool:
        return is_active_officer(self._dir, principal_id)

    def _record(
        self, type_: str, target: str, by: str, detail: dict[str, str], outcome: Outcome = Outcome.SUCCESS
    ) -> None:
        self._events.emit(
            AuditEvent(
                type=type_,
                occurred_at=self._clock.now(),
                outcome=outcome,
                actor=Actor(principal_id=by),
                objects=ObjectRef(target_principal=target),
                detail={**detail, "ordered_by": by},
            )
        )


def _playbook(action: str) -> Playbook:
    playbook = PLAYBOOKS.get(action)
    if playbook is None:
        raise ContainmentError(f"no containment action {action!r} (known: {', '.join(PLAYBOOKS)})")
    return playbook
