"""Principals (persons, devices, applications) and their account states."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Row, select, update
from sqlalchemy.exc import IntegrityError

from pacsguard.directory._common import Deps, check_principal_id, event, iso, when
from pacsguard.directory.model import (
    AccountState,
    By,
    Device,
    Lock,
    Principal,
    PrincipalKind,
    actor_of,
)
from pacsguard.domain import Actor, AuditEvent
from pacsguard.errors import AlreadyExists, InvalidEntry, NotFound
from pacsguard.storage.directory_tables import principals as t

__all__ = ["Principals", "normalise_fingerprint"]

AE_TITLE = re.compile(r"^[A-Za-z0-9_.\-]{1,16}$")  # PS3.5: 16 characters, no backslash or control
FINGERPRINT = re.compile(r"^[0-9a-f]{64}$")


def normalise_fingerprint(text: str) -> str:
    """A SHA-256 fingerprint as 64 lower-case hex digits; raises ``InvalidEntry``."""
    value = text.replace(":", "").replace(" ", "").lower()
    if value.startswith("sha256/"):
        value = value[len("sha256/") :]
    if not FINGERPRINT.match(value):
        raise InvalidEntry(f"bad certificate fingerprint {text!r}: expected 64 hex digits (SHA-256)")
    return value


def _check_device(device: Device) -> Device:
    if not AE_TITLE.match(device.ae_title):
        raise InvalidEntry(f"bad AE title {device.ae_title!r}: 1-16 of A-Z a-z 0-9 _ . -")
    fingerprint = normalise_fingerprint(device.cert_fingerprint) if device.cert_fingerprint else None
    return Device(device.ae_title, device.host, fingerprint, device.cert_subject)


def to_principal(row: Row[Any] | Mapping[str, Any]) -> Principal:
    r = row._mapping if isinstance(row, Row) else row
    lock = None
    if r["state"] == AccountState.LOCKED:
        lock = Lock(
            r["lock_reason"] or "",
            r["locked_by"] or "",
            when(r["locked_at"]) or when(r["updated_at"]),  # type: ignore[arg-type]
            when(r["locked_until"]),
            bool(r["lock_automatic"]),
        )
    device = Device(r["ae_title"], r["host"], r["cert_fingerprint"], r["cert_subject"]) if r["ae_title"] else None
    return Principal(
        id=r["id"],
        kind=PrincipalKind(r["kind"]),
        display_name=r["display_name"],
        zone=r["zone"],
        state=AccountState(r["state"]),
        created_at=when(r["created_at"]),  # type: ignore[arg-type]
        created_by=r["created_by"],
        email=r["email"],
        device=device,
        lock=lock,
        has_password=r["password_hash"] is not None,
        mfa_enrolled=r["totp_secret"] is not None,
    )


class Principals:
    """Create, find and change principals; lock, unlock, disable and enable accounts.

    Locking, unlocking, disabling and enabling are idempotent (containment may repeat
    them); they return whether anything changed and emit an event only when it did.
    """

    def __init__(self, deps: Deps) -> None:
        self._d = deps

    def create(
        self,
        principal_id: str,
        *,
        kind: PrincipalKind,
        display_name: str,
        zone: str,
        by: By,
        email: str | None = None,
        device: Device | None = None,
    ) -> Principal:
        """Add a principal; raises ``InvalidEntry``, ``NotFound`` (zone) or ``AlreadyExists``."""
        check_principal_id(principal_id)
        self._check_zone(zone)
        if kind is PrincipalKind.DEVICE and device is None:
            raise InvalidEntry(f"device {principal_id!r} needs an AE title")
        if kind is not PrincipalKind.DEVICE and device is not None:
            raise InvalidEntry("only a device has an AE title, host and certificate")
        device = _check_device(device) if device else None
        now, actor = self._d.now(), actor_of(by)
        values: dict[str, Any] = {
            "id": principal_id,
            "kind": kind.value,
            "display_name": display_name or principal_id,
            "zone": zone,
            "email": email,
            "state": AccountState.ACTIVE.value,
            "lock_automatic": False,
            "created_at": now,
            "created_by": actor.principal_id or "",
            "updated_at": now,
            **_device_values(device),
        }
        try:
            with self._d.engine.begin() as conn:
                conn.execute(t.insert().values(**values))
        except IntegrityError as exc:
            raise AlreadyExists(_duplicate_message(principal_id, device)) from exc
        detail = {"kind": kind.value, "zone": zone, **({"ae_title": device.ae_title} if device else {})}
        self._d.events.emit(event("principal.created", now, actor, target=principal_id, zone=zone, detail=detail))
        return self.get(principal_id)

    def update(
        self,
        principal_id: str,
        *,
        by: By,
        display_name: str | None = None,
        email: str | None = None,
        zone: str | None = None,
        device: Device | None = None,
    ) -> Principal:
        """Change descriptive fields; raises ``NotFound``, ``InvalidEntry`` or ``AlreadyExists``."""
        current = self.get(principal_id)
        changes: dict[str, Any] = {}
        if display_name is not None:
            changes["display_name"] = display_name
        if email is not None:
            changes["email"] = email
        if zone is not None:
            changes["zone"] = self._check_zone(zone)
        if device is not None:
            if current.kind is not PrincipalKind.DEVICE:
                raise InvalidEntry("only a device has an AE title, host and certificate")
            changes.update(_device_values(_check_device(device)))
        if not changes:
            return current
        now = self._d.now()
        try:
            with self._d.engine.begin() as conn:
                conn.execute(update(t).where(t.c.id == principal_id).values(updated_at=now, **changes))
        except IntegrityError as exc:
            raise AlreadyExists(_duplicate_message(principal_id, device)) from exc
        detail = {"changed": sorted(changes)}
        self._d.events.emit(event("principal.updated", now, actor_of(by), target=principal_id, detail=detail))
        return self.get(principal_id)

    def get(self, principal_id: str) -> Principal:
        """The principal; raises ``NotFound``."""
        with self._d.engine.connect() as conn:
            row = conn.execute(select(t).where(t.c.id == principal_id)).first()
        if row is None:
            raise NotFound(f"no principal {principal_id!r}")
        return to_principal(row)

    def find(self, principal_id: str) -> Principal | None:
        """The principal, or ``None``."""
        with self._d.engine.connect() as conn:
            row = conn.execute(select(t).where(t.c.id == principal_id)).first()
        return to_principal(row) if row else None

    def by_fingerprint(self, fingerprint: str) -> Principal:
        """The device whose certificate has this SHA-256 fingerprint; raises ``NotFound``."""
        value = normalise_fingerprint(fingerprint)
        with self._d.engine.connect() as conn:
            row = conn.execute(select(t).where(t.c.cert_fingerprint == value)).first()
        if row is None:
            raise NotFound(f"no device with certificate fingerprint {value}")
        return to_principal(row)

    def by_ae_title(self, ae_title: str) -> Principal:
        """The device registered with this AE title; raises ``NotFound``."""
        with self._d.engine.connect() as conn:
            row = conn.execute(select(t).where(t.c.ae_title == ae_title)).first()
        if row is None:
            raise NotFound(f"no device with AE title {ae_title!r}")
        return to_principal(row)

    def list(self, *, kind: PrincipalKind | None = None, zone: str | None = None) -> list[Principal]:
        """Every principal, optionally of one kind or zone, ordered by id."""
        query = select(t).order_by(t.c.id)
        if kind is not None:
            query = query.where(t.c.kind == kind.value)
        if zone is not None:
            query = query.where(t.c.zone == zone)
        with self._d.engine.connect() as conn:
            return [to_principal(r) for r in conn.execute(query)]

    def lock(self, principal_id: str, *, reason: str, by: By, until: datetime | None = None) -> bool:
        """Lock the account (until ``until``, or until unlocked); raises ``NotFound``.

        Returns ``False`` when an officer's lock was already in place (nothing changed).
        """
        current = self.get(principal_id)
        now = self._d.now()
        lock = current.lock
        if current.state_at(now) is AccountState.LOCKED and lock and not lock.automatic and until is None:
            return False
        actor = actor_of(by)
        with self._d.engine.begin() as conn:
            set_lock(conn, principal_id, now, reason=reason, by=actor.principal_id or "", until=until, automatic=False)
        self._d.events.emit(locked_event(now, actor, principal_id, reason, until, automatic=False))
        return True

    def unlock(self, principal_id: str, *, by: By) -> bool:
        """Lift a lock; ``False`` when the account was not locked. Raises ``NotFound``."""
        current = self.get(principal_id)
        if current.state is not AccountState.LOCKED:
            return False
        now = self._d.now()
        with self._d.engine.begin() as conn:
            clear_lock(conn, principal_id, now)
        self._d.events.emit(
            event("account.unlocked", now, actor_of(by), target=principal_id, detail={"automatic": False})
        )
        return True

    def disable(self, principal_id: str, *, by: By, reason: str = "") -> bool:
        """Disable the account for good (until enabled); ``False`` if it already was."""
        return self._set_state(principal_id, AccountState.DISABLED, "account.disabled", by, reason)

    def enable(self, principal_id: str, *, by: By) -> bool:
        """Re-enable a disabled account; ``False`` if it was not disabled."""
        return self._set_state(principal_id, AccountState.ACTIVE, "account.enabled", by, "")

    def _set_state(self, principal_id: str, state: AccountState, type_: str, by: By, reason: str) -> bool:
        current = self.get(principal_id)
        if (state is AccountState.DISABLED) == (current.state is AccountState.DISABLED):
            return False
        now = self._d.now()
        with self._d.engine.begin() as conn:
            clear_lock(conn, principal_id, now)
            conn.execute(update(t).where(t.c.id == principal_id).values(state=state.value))
        detail = {"reason": reason} if reason else {}
        self._d.events.emit(event(type_, now, actor_of(by), target=principal_id, detail=detail))
        return True

    def _check_zone(self, zone: str) -> str:
        if zone not in self._d.zones:
            known = ", ".join(sorted(self._d.zones.zones))
            raise NotFound(f"no zone {zone!r} in zones.yaml (known: {known})")
        return zone


def set_lock(
    conn: Connection, principal_id: str, now: datetime, *, reason: str, by: str, until: datetime | None, automatic: bool
) -> None:
    """Write a lock onto the account row."""
    conn.execute(
        update(t)
        .where(t.c.id == principal_id)
        .values(
            state=AccountState.LOCKED.value,
            lock_reason=reason,
            locked_by=by,
            locked_at=now,
            locked_until=until,
            lock_automatic=automatic,
            updated_at=now,
        )
    )


def clear_lock(conn: Connection, principal_id: str, now: datetime) -> None:
    """Remove any lock from the account row (a disabled account stays disabled)."""
    conn.execute(
        update(t)
        .where(t.c.id == principal_id)
        .values(
            lock_reason=None, locked_by=None, locked_at=None, locked_until=None, lock_automatic=False, updated_at=now
        )
    )
    conn.execute(update(t).where(t.c.id == principal_id, t.c.state == AccountState.LOCKED.value).values(state="active"))


def locked_event(
    now: datetime, actor: Actor, principal_id: str, reason: str, until: datetime | None, *, automatic: bool
) -> AuditEvent:
    """The ``account.locked`` event."""
    detail = {"reason": reason, "automatic": automatic, "until": iso(until)}
    return event("account.locked", now, actor, target=principal_id, detail=detail)


def _device_values(device: Device | None) -> dict[str, Any]:
    if device is None:
        return {}
    return {
        "ae_title": device.ae_title,
        "host": device.host,
        "cert_fingerprint": device.cert_fingerprint,
        "cert_subject": device.cert_subject,
    }


def _duplicate_message(principal_id: str, device: Device | None) -> str:
    if device is None:
        return f"principal {principal_id!r} exists already"
    return f"principal {principal_id!r}, AE title {device.ae_title!r} or its certificate is registered already"
