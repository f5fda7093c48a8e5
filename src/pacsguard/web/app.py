"""``site_app``: the one ASGI app a site serves — DICOMweb, the JSON API, share pages,
health — and ``/api/v1/me``, which tells a caller who the site thinks they are."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from fastapi import APIRouter, Depends
from pydantic import BaseModel
from starlette.applications import Starlette
from starlette.routing import BaseRoute, Mount

from pacsguard.gateway import Gateway, gateway_app
from pacsguard.gateway.api import api_caller
from pacsguard.gateway.auth import Caller
from pacsguard.web.api import api_app
from pacsguard.web.sessions import sessions_router

__all__ = ["Me", "me_router", "site_app"]


def site_app(
    gateway: Gateway,
    routers: Sequence[APIRouter] = (),
    pages: Sequence[BaseRoute] = (),
    extra_health: Callable[[], Mapping[str, Any]] | None = None,
) -> Starlette:
    """``/dicomweb``, ``/healthz`` (plus ``extra_health``'s entries), ``/api`` (``me_router``
    and ``routers`` under ``/api/v1``) and ``pages`` (such as ``/share/{token}``) as one
    Starlette app."""
    api = api_app([me_router(gateway), sessions_router(gateway), *routers])
    return gateway_app(gateway, [Mount("/api", app=api), *pages], extra_health)


class HeldRoleOut(BaseModel):
    """One role the caller holds now, and through what."""

    role: str
    source: str
    until: str | None


class Me(BaseModel):
    """The authenticated caller as the decision point sees them."""

    principal_id: str
    zone: str | None
    auth_strength: int
    roles: list[HeldRoleOut]


def me_router(gateway: Gateway) -> APIRouter:
    """``GET /me``: the caller's principal, zone, authentication strength and roles."""
    router = APIRouter(tags=["session"])

    @router.get("/me", summary="Who the site thinks the caller is")
    async def me(caller: Caller = Depends(api_caller(gateway))) -> Me:  # noqa: B008 (FastAPI's idiom)
        subject = caller.subject
        roles = [
            HeldRoleOut(
                role=str(held.role),
                source=str(held.source),
                until=held.validity.not_after.isoformat() if held.validity.not_after else None,
            )
            for held in subject.roles
        ]
        return Me(principal_id=subject.principal_id, zone=subject.zone, auth_strength=int(subject.auth_strength),
                  roles=roles)  # fmt: skip

    return router
