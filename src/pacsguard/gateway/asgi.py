"""The gateway's ASGI application: ``/dicomweb`` and ``/healthz`` on one Starlette app,
plus whatever the composition root mounts beside them (the JSON API, share pages)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Mount, Route

from pacsguard.gateway.core import Gateway
from pacsguard.gateway.dicomweb import DicomWebApp
from pacsguard.gateway.errors import error_response, not_found, problem

__all__ = ["gateway_app"]


def gateway_app(
    gateway: Gateway,
    extra_routes: Sequence[BaseRoute] = (),
    extra_health: Callable[[], Mapping[str, Any]] | None = None,
) -> Starlette:
    """A Starlette app serving DICOMweb at ``/dicomweb``, health at ``/healthz`` and
    ``extra_routes``; its lifespan closes the archives at shutdown. ``extra_health``
    adds its entries to the ``/healthz`` body (a component above the gateway, such as
    the ATNA receiver, reports there without the gateway importing it)."""

    async def healthz(request: Request) -> JSONResponse:
        health = gateway.audit.health
        ok = health.state == "healthy"
        body = {
            "status": "ok" if ok else "failing",
            "audit": {"state": health.state, "reason": health.reason, "since": health.since.isoformat()},
            "archives": sorted(a.name for a in gateway.archives.values()),
        }
        if extra_health is not None:
            body.update(extra_health())
        return JSONResponse(body, status_code=200 if ok else 503)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        try:
            yield
        finally:  # the archives' HTTP clients are bound to this event loop: close them in it
            for archive in gateway.archives.values():
                await archive.aclose()

    routes: list[BaseRoute] = [
        Route("/healthz", healthz, methods=["GET"]),
        Mount("/dicomweb", app=DicomWebApp(gateway)),
    ]
    app = Starlette(
        lifespan=lifespan,
        routes=[*routes, *extra_routes],
        exception_handlers={HTTPException: _http_error, Exception: _crash},
    )
    app.router.redirect_slashes = False  # a redirect would tell a path exists: every miss is the same 404
    return app


async def _http_error(request: Request, exc: Exception) -> Response:
    """Paths outside the app's routes get the same 404 as everything else that is not there."""
    status = exc.status_code if isinstance(exc, HTTPException) else 500
    return not_found() if status == 404 else problem(status, str(getattr(exc, "detail", "")) or "refused")


async def _crash(request: Request, exc: Exception) -> Response:
    return error_response(exc)
