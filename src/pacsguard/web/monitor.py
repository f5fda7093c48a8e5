"""The security officer's API: alerts, incidents and containment under ``/api/v1``.

``monitor_router(gateway, desk)`` joins the three routers of ``web.alerts``,
``web.incidents`` and ``web.containment``. Every route needs the whole
``security-officer`` role; a refusal is answered 403 and recorded (``access.denied``),
every read of alerts or incidents is recorded first (``audit.log.used``: alerts are the
audit log's contents, and officers are watched too), and every change is recorded before
it is made (``incident.updated``; containment records its own ``containment.*``).
"""

from __future__ import annotations

from fastapi import APIRouter

from pacsguard.gateway import Gateway
from pacsguard.web._officer import Desk
from pacsguard.web.alerts import alerts_router
from pacsguard.web.containment import containment_router
from pacsguard.web.incidents import incidents_router

__all__ = ["Desk", "monitor_router"]


def monitor_router(gateway: Gateway, desk: Desk) -> APIRouter:
    """``/alerts``, ``/incidents`` and ``/containment`` for security officers."""
    router = APIRouter()
    for part in (alerts_router, incidents_router, containment_router):
        router.include_router(part(gateway, desk))
    return router
