"""The share-link API: ``POST/GET /shares``, ``DELETE /shares/{id}``,
``POST /shares/revoke-all`` (under ``/api/v1``)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, ConfigDict, Field
from starlette.requests import Request

from pacsguard.gateway.api import api_caller
from pacsguard.gateway.auth import Caller
from pacsguard.gateway.shares.service import ShareRequest, ShareService
from pacsguard.gateway.shares.store import ShareLink

__all__ = ["NewShareIn", "RevokeAllIn", "ShareCreated", "ShareOut", "shares_router"]


class NewShareIn(BaseModel):
    """A share link to create; omitted limits take the site's ``[shares]`` defaults."""

    model_config = ConfigDict(extra="forbid")

    studies: list[Annotated[str, Field(max_length=64)]] = Field(min_length=1, max_length=1000)
    days: float | None = Field(None, gt=0, description="lifetime in days (default [shares] default_days)")
    max_opens: int | None = Field(None, ge=1)
    passcode: str | None = Field(None, max_length=256)
    recipient: str | None = Field(None, max_length=320, description="e-mail address that receives a one-time code")


class RevokeAllIn(BaseModel):
    """Whose links to revoke (default: the caller's; another principal's needs an officer)."""

    model_config = ConfigDict(extra="forbid")

    principal: str | None = Field(None, max_length=128)
    reason: str = Field("", max_length=500)


class ShareOut(BaseModel):
    """A link as its creator sees it (never its token)."""

    id: str
    creator: str
    studies: list[str]
    state: str
    created_at: datetime
    expires_at: datetime
    max_opens: int
    opens: int
    passcode: bool
    recipient: str | None
    revoked_at: datetime | None
    revoked_by: str | None
    revoked_reason: str | None


class ShareCreated(ShareOut):
    """A new link with its URL, which holds the token: shown this once, never again."""

    url: str


class Revoked(BaseModel):
    """How many links a revoke-all ended."""

    revoked: int


def _out(link: ShareLink, now: datetime) -> ShareOut:
    return ShareOut(
        id=link.id, creator=link.creator, studies=list(link.studies), state=link.state(now).value,
        created_at=link.created_at, expires_at=link.expires_at, max_opens=link.max_opens, opens=link.opens,
        passcode=link.passcode_hash is not None, recipient=link.recipient, revoked_at=link.revoked_at,
        revoked_by=link.revoked_by, revoked_reason=link.revoked_reason,
    )  # fmt: skip


def shares_router(service: ShareService) -> APIRouter:
    """The share-link routes; errors are the API's (``NotFound`` 404, ``BadRequest`` 400,
    ``Forbidden`` 403, ``AuditUnavailable`` 503)."""
    router = APIRouter(prefix="/shares", tags=["shares"])
    caller_of = api_caller(service.gateway)
    now = service.gateway.clock.now

    @router.post("", status_code=201, summary="Create a share link (its URL is shown once)")
    async def create(body: NewShareIn, request: Request, caller: Caller = Depends(caller_of)) -> ShareCreated:  # noqa: B008
        ask = ShareRequest(tuple(body.studies), body.days, body.max_opens, body.passcode, body.recipient)
        created = await service.create(caller, ask)
        base = service.gateway.options.public_url or f"{request.url.scheme}://{request.url.netloc}"
        out = _out(created.link, now())
        return ShareCreated(**out.model_dump(), url=f"{base.rstrip('/')}/share/{created.token}")

    @router.get("", summary="The caller's share links (an officer may name a principal)")
    async def listing(
        principal: str | None = Query(None, max_length=128),
        caller: Caller = Depends(caller_of),  # noqa: B008
    ) -> list[ShareOut]:
        at = now()
        return [_out(link, at) for link in await service.links(caller, principal)]

    @router.delete("/{share_id}", summary="Revoke one share link (its creator or an officer)")
    async def revoke(share_id: str, caller: Caller = Depends(caller_of)) -> ShareOut:  # noqa: B008
        return _out(await service.revoke(caller, share_id[:64]), now())

    @router.post("/revoke-all", summary="Revoke every open link of the caller (or, for an officer, a principal)")
    async def revoke_all(body: RevokeAllIn, caller: Caller = Depends(caller_of)) -> Revoked:  # noqa: B008
        return Revoked(revoked=await service.revoke_all(caller, body.principal, body.reason))

    return router
