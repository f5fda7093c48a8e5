"""The recipient's side of a share link: finding the link by its token, the passcode and
one-time-code gates, counting opens, and the events of each step.

Every way a link can fail (malformed or unknown token, expired, revoked, locked,
contained, used up) raises the same ``ShareRefused``; only its ``reason`` differs, and
that goes into the audit log, never to the recipient. Each request is one ``share.opened``
event: ``success`` for what was shown (``detail.what``: page, preview, download, code),
``failure`` for a wrong passcode or code, ``denied`` for a refusal. A link found expired
or used up is also ``share.expired``, once. Too many wrong entries lock the link: it is
revoked by ``share:attempts`` (``share.revoked``).
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, NoReturn

import anyio.to_thread

from pacsguard.archives import CatalogueEntry
from pacsguard.domain import Actor, ObjectRef, Outcome
from pacsguard.errors import ShareRefused
from pacsguard.gateway.shares.service import ShareService
from pacsguard.gateway.shares.store import LOCKED_BY, ShareLink, ShareState
from pacsguard.gateway.shares.tokens import Pass, code_hash, is_token, new_code, read_pass

__all__ = ["CodeNotSent", "RecipientDesk", "Step"]

_RESEND_AFTER = timedelta(minutes=1)


class Step(StrEnum):
    """What the recipient must do next."""

    PASSCODE = "passcode"
    CODE = "code"
    OPEN = "open"


class CodeNotSent(Exception):
    """The one-time code could not be sent now: too soon after the last one, or the mail
    relay failed (``retry_later``)."""

    def __init__(self, message: str, *, retry_later: bool = False) -> None:
        self.retry_later = retry_later
        super().__init__(message)


class RecipientDesk:
    """Serves a link's recipient on behalf of ``service``."""

    def __init__(self, service: ShareService) -> None:
        self.service = service
        self.store = service.store
        self.gateway = service.gateway
        self.settings = service.settings

    def now(self) -> datetime:
        return self.gateway.clock.now()

    # --- finding ------------------------------------------------------------------------
    async def find(self, token: str, actor: Actor, cookie: str | None, what: str) -> tuple[ShareLink, Pass | None]:
        """The link of ``token`` and the recipient's valid pass for it, if any. Raises
        ``ShareRefused`` (audited) when it cannot be opened."""
        link = await anyio.to_thread.run_sync(self.store.by_token, token) if is_token(token) else None
        if link is None:
            await self.refuse(None, actor, what, "unknown" if is_token(token) else "malformed")
        assert link is not None
        now = self.now()
        grant = read_pass(link.secret, link.id, cookie, now)
        state = link.state(now)
        if state is ShareState.USED_UP and grant is not None and grant.stage == Step.OPEN:
            state = ShareState.LIVE  # an open session finishes what it started
        if state is not ShareState.LIVE:
            await self.refuse(link, actor, what, state.value)
        return link, grant

    async def refuse(self, link: ShareLink | None, actor: Actor, what: str, reason: str) -> NoReturn:
        """Record the refusal (and a link's end, once), then raise ``ShareRefused``."""
        if link is not None and reason in (ShareState.EXPIRED, ShareState.USED_UP) and link.expiry_noted_at is None:
            await self.gateway.record(actor, "share.expired", objects=_objects(link),
                                      detail={**_about(link), "reason": reason})  # fmt: skip
            await anyio.to_thread.run_sync(self.store.note_expiry, link.id, self.now())
        await self.gateway.record(
            actor, "share.opened", outcome=Outcome.DENIED, objects=_objects(link) if link else ObjectRef(),
            detail={**(_about(link) if link else {}), "what": what, "reason": reason},
        )  # fmt: skip
        raise ShareRefused(reason)

    @staticmethod
    def step(link: ShareLink, grant: Pass | None) -> Step:
        """The gate the recipient is at."""
        if grant is not None and grant.stage == Step.OPEN:
            return Step.OPEN
        if link.passcode_hash is not None and grant is None:
            return Step.PASSCODE
        if link.recipient is not None:
            return Step.CODE
        return Step.OPEN

    def grant(self, link: ShareLink, stage: Step) -> Pass:
        """A pass for ``stage``, valid for the session length (never past the link's end)."""
        until = min(self.now() + timedelta(seconds=self.settings.session_seconds), link.expires_at)
        return Pass(link.id, stage.value, until)

    # --- opening ------------------------------------------------------------------------
    async def admit(self, link: ShareLink, actor: Actor, what: str) -> Pass:
        """Count one open and return the session pass; ``ShareRefused`` when used up."""
        if not await anyio.to_thread.run_sync(self.store.count_open, link.id):
            await self.refuse(link, actor, what, ShareState.USED_UP.value)
        return self.grant(link, Step.OPEN)

    async def opened(self, link: ShareLink, actor: Actor, what: str, study: str | None = None) -> None:
        """Record what is about to be shown (durable before it leaves)."""
        objects = _objects(link) if study is None else ObjectRef(share_id=link.id, study_uid=study, count=1)
        await self.gateway.record(actor, "share.opened", objects=objects, detail={**_about(link), "what": what})

    def study_read(self, link: ShareLink, actor: Actor) -> Callable[[CatalogueEntry, int, int], Awaitable[None]]:
        """The ``on_study`` hook of a download: one ``study.read`` per study, with its
        instances and bytes and the share, durable before the study's first byte."""

        async def on_study(entry: CatalogueEntry, instances: int, size: int) -> None:
            await self.gateway.record(
                actor, "study.read", objects=_study(link, entry, instances, size),
                detail={"action": "read", "kind": "share-download", "download": True, "share_id": link.id,
                        "creator": link.creator, "recipient": link.recipient},
            )  # fmt: skip

        return on_study

    def study_failed(self, link: ShareLink, actor: Actor) -> Callable[[CatalogueEntry, BaseException], Awaitable[None]]:
        """The ``on_failure`` hook of a download: the study that could not be fetched."""

        async def on_failure(entry: CatalogueEntry, exc: BaseException) -> None:
            await self.gateway.record(
                actor, "study.read", outcome=Outcome.ERROR, objects=_study(link, entry),
                detail={"action": "read", "kind": "share-download", "share_id": link.id, "error": str(exc)[:500]},
            )  # fmt: skip

        return on_failure

    # --- the gates ----------------------------------------------------------------------
    async def check_passcode(self, link: ShareLink, actor: Actor, passcode: str) -> bool:
        """True for the right passcode; a wrong one is counted and may lock the link
        (then ``ShareRefused``)."""
        ok = await anyio.to_thread.run_sync(self.service.vault.verify, link.passcode_hash, passcode[:256])
        if not ok:
            await self._failed(link, actor, "passcode")
        return ok

    async def send_code(self, link: ShareLink, actor: Actor) -> None:
        """E-mail a fresh one-time code to the link's recipient. Raises ``CodeNotSent``."""
        now = self.now()
        ttl = timedelta(seconds=self.settings.code_ttl_seconds)
        mailer, recipient = self.service.mailer, link.recipient
        if recipient is None or mailer is None:
            raise CodeNotSent("This link sends no codes.")
        if link.code_expires_at is not None and link.code_expires_at - ttl + _RESEND_AFTER > now:
            raise CodeNotSent("A code was sent less than a minute ago: please check your mailbox.")
        code = new_code()
        await self.opened(link, actor, "code")
        await anyio.to_thread.run_sync(self.store.set_code, link.id, code_hash(link.secret, code), now + ttl)
        try:
            await mailer.send_code(recipient, code, until=now + ttl, site_name=self.service.site_name)
        except Exception as exc:  # aiosmtplib and socket errors: the relay is the problem, not the link
            detail = {**_about(link), "what": "code", "reason": f"mail: {exc}"[:300]}
            await self.gateway.record(
                actor, "share.opened", outcome=Outcome.ERROR, objects=_objects(link), detail=detail
            )
            raise CodeNotSent("The code could not be sent: please try again later.", retry_later=True) from exc

    async def check_code(self, link: ShareLink, actor: Actor, code: str) -> bool:
        """True for the current, unexpired code, which is then used up; anything else is
        counted as a failure and may lock the link (then ``ShareRefused``)."""
        digest = code_hash(link.secret, code[:32])
        current = link.code_hash is not None and hmac.compare_digest(link.code_hash, digest)
        fresh = link.code_expires_at is not None and self.now() < link.code_expires_at
        if current and fresh and await anyio.to_thread.run_sync(self.store.use_code, link.id, digest):
            return True
        await self._failed(link, actor, "code" if fresh else "expired code")
        return False

    async def _failed(self, link: ShareLink, actor: Actor, what: str) -> None:
        failures = await anyio.to_thread.run_sync(self.store.count_failure, link.id)
        await self.gateway.record(
            actor, "share.opened", outcome=Outcome.FAILURE, objects=_objects(link),
            detail={**_about(link), "what": what, "reason": f"wrong {what}", "failures": failures},
        )  # fmt: skip
        if failures < self.settings.max_attempts:
            return
        reason = f"locked after {failures} wrong passcodes or codes"
        await self.gateway.record(actor, "share.revoked", objects=_objects(link),
                                  detail={**_about(link), "by": LOCKED_BY, "reason": reason})  # fmt: skip
        now = self.now()
        await anyio.to_thread.run_sync(lambda: self.store.revoke([link.id], by=LOCKED_BY, reason=reason, now=now))
        raise ShareRefused(ShareState.LOCKED.value)


def _objects(link: ShareLink) -> ObjectRef:
    return ObjectRef(
        share_id=link.id, study_uid=link.studies[0], count=len(link.studies), target_principal=link.creator
    )


def _study(link: ShareLink, entry: CatalogueEntry, count: int | None = None, size: int | None = None) -> ObjectRef:
    return ObjectRef(
        share_id=link.id, study_uid=entry.study_uid, patient_id=entry.patient_id or None, zone=entry.zone,
        count=count, bytes=size,
    )  # fmt: skip


def _about(link: ShareLink) -> dict[str, Any]:
    return {"recipient": link.recipient, "creator": link.creator, "studies": list(link.studies)}
