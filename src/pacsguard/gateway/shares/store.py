"""``ShareStore``: share links in the database, and the ``ShareLinks`` side that
containment's ``expire_shares`` playbook uses.

The store only reads and writes rows; it emits no events (the share service records them
before each change, never inside a write transaction). Times are compared in Python on
aware UTC values, so SQLite and PostgreSQL agree to the microsecond.
"""

from __future__ import annotations

import hmac
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import Engine, insert, select, update

from pacsguard.clock import Clock, utc
from pacsguard.gateway.shares.tokens import hash_token, is_token
from pacsguard.storage.share_tables import share_studies as tst
from pacsguard.storage.share_tables import shares as ts

__all__ = ["LOCKED_BY", "NewShare", "ShareLink", "ShareState", "ShareStore"]

LOCKED_BY = "share:attempts"  # revoked_by of a link locked by too many wrong passcodes or codes


class ShareState(StrEnum):
    """Where a link stands at one instant."""

    LIVE = "live"
    EXPIRED = "expired"
    USED_UP = "used_up"
    REVOKED = "revoked"
    LOCKED = "locked"
    CONTAINED = "contained"


@dataclass(frozen=True, slots=True)
class NewShare:
    """A link about to be stored (the token itself is not part of it)."""

    id: str
    creator: str
    studies: tuple[str, ...]
    token_hash: str
    secret: str
    created_at: datetime
    expires_at: datetime
    max_opens: int
    passcode_hash: str | None = None
    recipient: str | None = None


@dataclass(frozen=True, slots=True)
class ShareLink:
    """A stored link, as read back."""

    id: str
    creator: str
    studies: tuple[str, ...]
    secret: str
    created_at: datetime
    expires_at: datetime
    max_opens: int
    opens: int
    passcode_hash: str | None
    recipient: str | None
    code_hash: str | None
    code_expires_at: datetime | None
    failed_attempts: int
    revoked_at: datetime | None
    revoked_by: str | None
    revoked_reason: str | None
    contained_at: datetime | None
    expiry_noted_at: datetime | None

    def state(self, now: datetime) -> ShareState:
        """The link's state at ``now``: valid until just before ``expires_at``; used up
        once opened ``max_opens`` times (a recipient's open session still works)."""
        if self.revoked_at is not None:
            return ShareState.LOCKED if self.revoked_by == LOCKED_BY else ShareState.REVOKED
        if self.contained_at is not None:
            return ShareState.CONTAINED
        if utc(now) >= self.expires_at:
            return ShareState.EXPIRED
        if self.opens >= self.max_opens:
            return ShareState.USED_UP
        return ShareState.LIVE


class ShareStore:
    """Share links on ``engine``; ``clock`` dates containment. Implements the monitor's
    ``ShareLinks`` protocol (``expire_all``, ``reinstate``)."""

    def __init__(self, engine: Engine, clock: Clock) -> None:
        self._engine = engine
        self._clock = clock

    # --- reading ------------------------------------------------------------------------
    def by_token(self, token: str) -> ShareLink | None:
        """The link whose token is ``token`` (looked up by its hash, compared in constant
        time), or ``None`` for a malformed or unknown token."""
        if not is_token(token):
            return None
        digest = hash_token(token)
        with self._engine.connect() as conn:
            row = conn.execute(select(ts).where(ts.c.token_hash == digest)).first()
            if row is None or not hmac.compare_digest(row.token_hash, digest):
                return None
            return self._link(conn, row)

    def get(self, share_id: str) -> ShareLink | None:
        """The link with id ``share_id``, or ``None``."""
        with self._engine.connect() as conn:
            row = conn.execute(select(ts).where(ts.c.id == share_id)).first()
            return None if row is None else self._link(conn, row)

    def links(self, creator: str | None = None) -> list[ShareLink]:
        """Every link (of ``creator``), newest first."""
        query = select(ts).order_by(ts.c.created_at.desc(), ts.c.id)
        if creator is not None:
            query = query.where(ts.c.creator == creator)
        with self._engine.connect() as conn:
            return [self._link(conn, row) for row in conn.execute(query).all()]

    def live(self, creator: str, now: datetime) -> list[ShareLink]:
        """The links of ``creator`` not yet ended at ``now`` (used-up ones included: an
        open session may still be using them)."""
        return [s for s in self.links(creator) if s.state(now) in (ShareState.LIVE, ShareState.USED_UP)]

    def _link(self, conn: Any, row: Any) -> ShareLink:
        query = select(tst.c.study_uid).where(tst.c.share_id == row.id).order_by(tst.c.position)
        studies = tuple(conn.execute(query).scalars())
        return ShareLink(
            id=row.id, creator=row.creator, studies=studies, secret=row.secret,
            created_at=utc(row.created_at), expires_at=utc(row.expires_at), max_opens=row.max_opens,
            opens=row.opens, passcode_hash=row.passcode_hash, recipient=row.recipient, code_hash=row.code_hash,
            code_expires_at=_utc(row.code_expires_at), failed_attempts=row.failed_attempts,
            revoked_at=_utc(row.revoked_at), revoked_by=row.revoked_by, revoked_reason=row.revoked_reason,
            contained_at=_utc(row.contained_at), expiry_noted_at=_utc(row.expiry_noted_at),
        )  # fmt: skip

    # --- writing ------------------------------------------------------------------------
    def insert(self, new: NewShare) -> None:
        """Store a new link with its studies."""
        with self._engine.begin() as conn:
            conn.execute(
                insert(ts).values(
                    id=new.id, creator=new.creator, token_hash=new.token_hash, secret=new.secret,
                    created_at=new.created_at, expires_at=new.expires_at, max_opens=new.max_opens, opens=0,
                    passcode_hash=new.passcode_hash, recipient=new.recipient, failed_attempts=0,
                )
            )  # fmt: skip
            rows = [{"share_id": new.id, "position": i, "study_uid": uid} for i, uid in enumerate(new.studies)]
            conn.execute(insert(tst), rows)

    def count_open(self, share_id: str) -> bool:
        """Count one open; ``False`` (nothing changed) when the link is used up."""
        query = update(ts).where(ts.c.id == share_id, ts.c.opens < ts.c.max_opens).values(opens=ts.c.opens + 1)
        with self._engine.begin() as conn:
            return bool(conn.execute(query).rowcount)

    def note_expiry(self, share_id: str, now: datetime) -> bool:
        """Mark the link's end as recorded; ``False`` if it was marked already."""
        query = update(ts).where(ts.c.id == share_id, ts.c.expiry_noted_at.is_(None)).values(expiry_noted_at=now)
        with self._engine.begin() as conn:
            return bool(conn.execute(query).rowcount)

    def set_code(self, share_id: str, digest: str, until: datetime) -> None:
        """Keep the hash of a newly sent one-time code (replacing any earlier one)."""
        with self._engine.begin() as conn:
            conn.execute(update(ts).where(ts.c.id == share_id).values(code_hash=digest, code_expires_at=until))

    def use_code(self, share_id: str, digest: str) -> bool:
        """Consume the one-time code whose hash is ``digest``; ``False`` if it is not the
        current one (a code works once)."""
        query = update(ts).where(ts.c.id == share_id, ts.c.code_hash == digest)
        with self._engine.begin() as conn:
            return bool(conn.execute(query.values(code_hash=None, code_expires_at=None)).rowcount)

    def count_failure(self, share_id: str) -> int:
        """Count one wrong passcode or code; returns the link's failures so far."""
        with self._engine.begin() as conn:
            conn.execute(update(ts).where(ts.c.id == share_id).values(failed_attempts=ts.c.failed_attempts + 1))
            return int(conn.execute(select(ts.c.failed_attempts).where(ts.c.id == share_id)).scalar_one())

    def revoke(self, share_ids: Iterable[str], *, by: str, reason: str, now: datetime) -> int:
        """Revoke the links not revoked yet; returns how many changed."""
        ids = list(share_ids)
        if not ids:
            return 0
        query = update(ts).where(ts.c.id.in_(ids), ts.c.revoked_at.is_(None))
        values = {"revoked_at": now, "revoked_by": by[:128], "revoked_reason": reason[:500]}
        with self._engine.begin() as conn:
            return int(conn.execute(query.values(**values)).rowcount)

    # --- containment (the monitor's ShareLinks protocol) ----------------------------------
    def expire_all(self, principal_id: str, *, by: str, reason: str) -> int:
        """End every live link ``principal_id`` created, marked so ``reinstate`` can bring
        exactly those back; returns how many."""
        now = self._clock.now()
        ids = [s.id for s in self.live(principal_id, now)]
        if not ids:
            return 0
        query = update(ts).where(ts.c.id.in_(ids), ts.c.contained_at.is_(None), ts.c.revoked_at.is_(None))
        values = {"contained_at": now, "contained_by": by[:256], "contained_reason": reason[:500]}
        with self._engine.begin() as conn:
            return int(conn.execute(query.values(**values)).rowcount)

    def reinstate(self, principal_id: str, *, by: str) -> int:
        """Bring back the links of ``principal_id`` that containment ended (those since
        revoked stay revoked); returns how many."""
        query = update(ts).where(ts.c.creator == principal_id, ts.c.contained_at.is_not(None))
        values = {"contained_at": None, "contained_by": None, "contained_reason": None}
        with self._engine.begin() as conn:
            return int(conn.execute(query.values(**values)).rowcount)


def _utc(when: datetime | None) -> datetime | None:
    return None if when is None else utc(when)
