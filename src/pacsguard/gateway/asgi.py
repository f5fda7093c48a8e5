"""The gateway's ASGI application: ``/dicomweb`` and ``/healthz`` on one Starlette app."""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Mount, Route

from pacsguard.gateway.core import Gateway
from pacsguard.gateway.dicomweb import DicomWebApp

__all__ = ["gateway_app"]


def gateway_app(gateway: Gateway) -> Starlette:
    """A Starlette app serving DICOMweb at ``/dicomweb`` and health at ``/healthz``."""

    async def healthz(request: Request) -> JSONResponse:
        health = gateway.audit.health
        ok = health.state == "healthy"
        body = {
            "status": "ok" if ok else "failing",
            "audit": {"state": health.state, "reason": health.reason, "since": health.since.isoformat()},
            "archives": sorted(a.name for a in gateway.archives.values()),
        }
        return JSONResponse(body, status_code=200 if ok else 503)

    return Starlette(
        routes=[Route("/healthz", healthz, methods=["GET"]), Mount("/dicomweb", app=DicomWebApp(gateway))],
    )
