"""``ShareService``: creating, listing and revoking share links, for their creators and
for security officers.

A link is created only for studies the creator may share: the decision point is asked
about ``Action.SHARE`` on each study, like the gateway decides reads. An unknown study and
a denied one are refused identically (``NotFound``) and audited as ``access.denied``.
Every change is recorded durably before it is made (``share.created``,
``share.revoked``): an audit failure leaves nothing changed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta

import anyio.to_thread

from pacsguard.archives import CatalogueEntry, is_valid_uid
from pacsguard.config import ShareSettings
from pacsguard.directory.passwords import PasswordVault
from pacsguard.domain import Action, ObjectRef, Outcome
from pacsguard.errors import BadRequest, Forbidden, NotFound
from pacsguard.gateway.auth import Caller
from pacsguard.gateway.core import Gateway, Intent, resource_of
from pacsguard.gateway.shares.mail import CodeMailer
from pacsguard.gateway.shares.store import NewShare, ShareLink, ShareState, ShareStore
from pacsguard.gateway.shares.tokens import hash_token, new_secret, new_share_id, new_token
from pacsguard.monitor.containment import OFFICER_ROLE

__all__ = ["CreatedShare", "ShareRequest", "ShareService"]

_EMAIL = re.compile(r"^[^@\s<>\"',;]{1,64}@[A-Za-z0-9.-]{1,253}\.[A-Za-z]{2,63}$")


@dataclass(frozen=True, slots=True)
class ShareRequest:
    """What a creator asks for; ``None`` takes the site's default."""

    studies: tuple[str, ...]
    days: float | None = None
    max_opens: int | None = None
    passcode: str | None = None
    recipient: str | None = None


@dataclass(frozen=True, slots=True)
class CreatedShare:
    """A new link and its token, which is shown this once and never stored."""

    link: ShareLink
    token: str


class ShareService:
    """Share links on ``store`` for the callers of ``gateway``, under ``settings``."""

    def __init__(
        self,
        gateway: Gateway,
        store: ShareStore,
        settings: ShareSettings,
        *,
        mailer: CodeMailer | None = None,
        vault: PasswordVault | None = None,
        site_name: str = "pacsguard",
    ) -> None:
        self.gateway = gateway
        self.store = store
        self.settings = settings
        self.mailer = mailer
        self.vault = vault or PasswordVault()
        self.site_name = site_name

    @property
    def clock_now(self) -> datetime:
        return self.gateway.clock.now()

    # --- creating -----------------------------------------------------------------------
    async def create(self, caller: Caller, ask: ShareRequest) -> CreatedShare:
        """Create a link for ``ask.studies``. Raises ``BadRequest`` (a limit or value named),
        ``NotFound`` (a study unknown or not shareable by the caller, audited) or
        ``AuditUnavailable``."""
        studies, expires_in, max_opens, recipient = self._checked(ask)
        entries = await self._decided(caller, studies)
        now = self.clock_now
        passcode_hash = await anyio.to_thread.run_sync(self.vault.hash, ask.passcode) if ask.passcode else None
        token = new_token()
        new = NewShare(
            id=new_share_id(), creator=caller.subject.principal_id, studies=studies, token_hash=hash_token(token),
            secret=new_secret(), created_at=now, expires_at=now + expires_in, max_opens=max_opens,
            passcode_hash=passcode_hash, recipient=recipient,
        )  # fmt: skip
        patients = sorted({e.patient_id for e in entries if e.patient_id})
        await self.gateway.record(
            caller, "share.created",
            objects=ObjectRef(share_id=new.id, study_uid=studies[0], count=len(studies),
                              patient_id=patients[0] if len(patients) == 1 else None, zone=entries[0].zone),
            detail={"recipient": recipient, "studies": list(studies), "expires_at": new.expires_at.isoformat(),
                    "max_opens": max_opens, "passcode": passcode_hash is not None, "patients": patients},
        )  # fmt: skip
        await anyio.to_thread.run_sync(self.store.insert, new)
        link = await anyio.to_thread.run_sync(self.store.get, new.id)
        assert link is not None
        return CreatedShare(link, token)

    def _checked(self, ask: ShareRequest) -> tuple[tuple[str, ...], timedelta, int, str | None]:
        s = self.settings
        studies = tuple(dict.fromkeys(ask.studies))
        if not studies or len(studies) > s.max_studies:
            raise BadRequest(f"studies: give 1 to {s.max_studies} study UIDs")
        for uid in studies:
            if not is_valid_uid(uid):
                raise BadRequest(f"studies: {uid[:80]!r} is not a DICOM UID")
        days = s.default_days if ask.days is None else ask.days
        if not 0 < days <= s.max_days:
            raise BadRequest(f"days: a link lives more than 0 and at most {s.max_days:g} days ([shares] max_days)")
        max_opens = s.default_max_opens if ask.max_opens is None else ask.max_opens
        if not 1 <= max_opens <= s.max_opens_limit:
            raise BadRequest(f"max_opens: from 1 to {s.max_opens_limit} ([shares] max_opens_limit)")
        if ask.passcode is not None and not s.min_passcode_length <= len(ask.passcode) <= 256:
            raise BadRequest(f"passcode: use {s.min_passcode_length} to 256 characters")
        recipient = ask.recipient.strip().lower() if ask.recipient else None
        if recipient is not None:
            if not _EMAIL.match(recipient):
                raise BadRequest("recipient: not an e-mail address")
            if self.mailer is None:
                raise BadRequest("recipient: this site sends no e-mail ([shares.smtp] host is empty)")
        return studies, timedelta(days=days), max_opens, recipient

    async def _decided(self, caller: Caller, studies: tuple[str, ...]) -> list[CatalogueEntry]:
        """The catalogue entries of ``studies`` when the caller may share every one;
        otherwise each refused study is audited and ``NotFound`` raised for the first."""
        found = await self.gateway.entries(studies)
        known = [found[uid] for uid in studies if uid in found]
        decisions = dict(zip([e.study_uid for e in known], await self.gateway.decide(
            caller, Action.SHARE, [resource_of(e) for e in known], Intent()), strict=True))  # fmt: skip
        refused = [uid for uid in studies if uid not in decisions or not decisions[uid].permitted]
        for uid in refused:
            entry = found.get(uid)
            await self.gateway.record(
                caller, "access.denied", outcome=Outcome.DENIED, decision=decisions.get(uid),
                objects=ObjectRef(study_uid=uid, patient_id=entry.patient_id or None if entry else None,
                                  zone=entry.zone if entry else None),
                detail={"action": Action.SHARE.value, "reason": "denied" if entry else "unknown"},
            )  # fmt: skip
        if refused:
            raise NotFound(f"no study {refused[0]!r}")
        return known

    # --- listing and revoking -----------------------------------------------------------
    async def links(self, caller: Caller, principal: str | None = None) -> list[ShareLink]:
        """The caller's links (or ``principal``'s, for an officer); raises ``Forbidden``."""
        return await anyio.to_thread.run_sync(self.store.links, self._whose(caller, principal))

    async def revoke(self, caller: Caller, share_id: str, reason: str = "") -> ShareLink:
        """Revoke one link: its creator or an officer may. Raises ``NotFound`` (also for
        someone else's link) or ``AuditUnavailable``; revoking twice changes nothing."""
        link = await anyio.to_thread.run_sync(self.store.get, share_id)
        if link is None or (link.creator != caller.subject.principal_id and not caller.subject.holds(OFFICER_ROLE)):
            raise NotFound(f"no share link {share_id!r}")
        if link.revoked_at is None:
            await self._revoke(caller, [link], reason or "revoked")
            link = await anyio.to_thread.run_sync(self.store.get, share_id)
            assert link is not None
        return link

    async def revoke_all(self, caller: Caller, principal: str | None = None, reason: str = "") -> int:
        """Revoke every link of the caller (or of ``principal``, for an officer) that has
        not ended; returns how many. Raises ``Forbidden`` or ``AuditUnavailable``."""
        whose = self._whose(caller, principal)
        now = self.clock_now
        links = await anyio.to_thread.run_sync(self.store.links, whose)
        open_ = [s for s in links if s.state(now) not in (ShareState.REVOKED, ShareState.LOCKED, ShareState.EXPIRED)]
        return await self._revoke(caller, open_, reason or "revoked with all of the creator's links")

    async def _revoke(self, caller: Caller, links: list[ShareLink], reason: str) -> int:
        by = caller.subject.principal_id
        for link in links:
            await self.gateway.record(
                caller, "share.revoked", objects=ObjectRef(share_id=link.id, target_principal=link.creator,
                                                           study_uid=link.studies[0], count=len(link.studies)),
                detail={"recipient": link.recipient, "by": by, "reason": reason[:500], "studies": list(link.studies)},
            )  # fmt: skip
        ids = [link.id for link in links]
        now = self.clock_now
        return await anyio.to_thread.run_sync(lambda: self.store.revoke(ids, by=by, reason=reason, now=now))

    def _whose(self, caller: Caller, principal: str | None) -> str:
        own = caller.subject.principal_id
        if principal is None or principal == own:
            return own
        if not caller.subject.holds(OFFICER_ROLE):
            raise Forbidden(f"only a {OFFICER_ROLE} may act on another principal's share links")
        return principal
