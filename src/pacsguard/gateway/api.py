"""What the gateway gives the JSON API's routers: the authenticated caller as a FastAPI
dependency, and the officer check.

A router is a function of the ``Gateway`` that returns an ``APIRouter``; its routes take
``caller: Caller = Depends(api_caller(gateway))``. Credentials are the DICOMweb ones (the
session cookie, an OIDC JWT) or an API token with the ``api`` scope. Every refusal is
audited: by the directory for a credential it saw, here for a malformed header.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from starlette.requests import Request

from pacsguard.errors import Forbidden
from pacsguard.gateway.auth import API_SCOPE, Caller
from pacsguard.gateway.core import Gateway
from pacsguard.monitor.containment import OFFICER_ROLE

__all__ = ["OFFICER_ROLE", "api_caller", "require_role"]


def api_caller(gateway: Gateway, scope: str = API_SCOPE) -> Callable[[Request], Awaitable[Caller]]:
    """A FastAPI dependency returning the request's ``Caller`` (``Gateway.admit``: a blocked
    address is ``Forbidden``, no or refused credentials a 401, each refusal audited)."""

    async def caller(request: Request) -> Caller:
        return await gateway.admit(request, scope)

    return caller


def require_role(caller: Caller, role: str = OFFICER_ROLE) -> None:
    """Raise ``Forbidden`` unless ``caller`` holds the whole of ``role`` (in any zone) now;
    a delegated subset of its actions is not enough."""
    if not caller.subject.holds(role):
        raise Forbidden(f"this needs the {role!r} role")
