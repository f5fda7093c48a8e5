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

from pacsguard.domain import Actor, Outcome
from pacsguard.errors import AuthenticationError, Forbidden, NotFound, TokenError
from pacsguard.gateway.auth import API_SCOPE, MALFORMED_HEADER, Caller, authenticate, client_of
from pacsguard.gateway.core import Gateway
from pacsguard.monitor.containment import OFFICER_ROLE

__all__ = ["OFFICER_ROLE", "api_caller", "require_role"]


def api_caller(gateway: Gateway, scope: str = API_SCOPE) -> Callable[[Request], Awaitable[Caller]]:
    """A FastAPI dependency returning the request's ``Caller``. It raises ``Forbidden``
    for an address containment blocks (audited ``access.denied``, reason ``ip_blocked``),
    ``MissingCredentials`` or ``AuthenticationError``; the API answers those with 401."""

    async def caller(request: Request) -> Caller:
        client = client_of(request)
        if await gateway.address_blocked(client):
            await gateway.refuse_anonymous(client, request.url.path, "ip_blocked")
            raise Forbidden("requests from this address are blocked; contact the site's security officer")
        try:
            return await authenticate(request, gateway.directory, scope)
        except AuthenticationError as exc:
            if exc.reason == MALFORMED_HEADER:
                actor = Actor(ip=client.ip, device_id=client.device_id, user_agent=client.user_agent)
                await gateway.record(actor, "token.rejected", outcome=Outcome.FAILURE,
                                     detail={"kind": "header", "reason": MALFORMED_HEADER})  # fmt: skip
            raise
        except NotFound as exc:  # the credential's principal was deleted since
            raise TokenError("unknown_principal", "the credentials are not valid") from exc

    return caller


def require_role(caller: Caller, role: str = OFFICER_ROLE) -> None:
    """Raise ``Forbidden`` unless ``caller`` holds the whole of ``role`` (in any zone) now;
    a delegated subset of its actions is not enough."""
    if not caller.subject.holds(role):
        raise Forbidden(f"this needs the {role!r} role")
