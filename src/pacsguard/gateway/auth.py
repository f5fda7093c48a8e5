"""Request authentication: who is calling, from where, how strongly authenticated.

Three credentials are accepted, checked by the directory (which audits every refusal):
``Authorization: Bearer pgt_…`` (an API token with the ``dicomweb`` scope),
``Authorization: Bearer <JWT>`` (the site's OIDC issuer), or the session cookie.
"""

from __future__ import annotations

from dataclasses import dataclass

import anyio.to_thread
from starlette.requests import HTTPConnection

from pacsguard.directory import Client, Directory
from pacsguard.directory.tokens import PREFIX
from pacsguard.domain import Actor, AuthStrength, Subject
from pacsguard.errors import TokenError

__all__ = [
    "API_SCOPE",
    "DEVICE_COOKIE",
    "DEVICE_HEADER",
    "SCOPE",
    "SESSION_COOKIE",
    "Caller",
    "MissingCredentials",
    "authenticate",
    "client_of",
]

SCOPE = "dicomweb"  # the API token scope for /dicomweb
API_SCOPE = "api"  # the API token scope for /api/v1
SESSION_COOKIE = "pacsguard_session"
DEVICE_COOKIE = "pacsguard_device"
DEVICE_HEADER = "x-device-id"
_MAX_CREDENTIAL = 8192
MALFORMED_HEADER = "malformed_header"  # refused here, before the directory sees it


class MissingCredentials(Exception):
    """No credential at all was presented (answered 401 without ``invalid_token``)."""


@dataclass(frozen=True, slots=True)
class Caller:
    """An authenticated request's subject and the audit ``Actor`` its events carry."""

    subject: Subject
    actor: Actor
    client: Client


def client_of(conn: HTTPConnection) -> Client:
    """IP from the ASGI client, device id from ``X-Device-Id`` or its cookie, user agent."""
    ip = conn.client.host if conn.client else None
    device = conn.headers.get(DEVICE_HEADER) or conn.cookies.get(DEVICE_COOKIE)
    agent = conn.headers.get("user-agent")
    return Client(ip, device[:128] if device else None, agent[:256] if agent else None)


async def authenticate(conn: HTTPConnection, directory: Directory, scope: str = SCOPE) -> Caller:
    """The caller of ``conn``; an API token must carry ``scope``. Raises
    ``MissingCredentials`` or ``AuthenticationError`` (``TokenError``, ``AccountLocked``)
    after the directory has audited the refusal."""
    client = client_of(conn)
    header = conn.headers.get("authorization", "")
    cookie = conn.cookies.get(SESSION_COOKIE)
    if header:
        scheme, _, credential = header.partition(" ")
        credential = credential.strip()
        if scheme.lower() != "bearer" or not credential or len(credential) > _MAX_CREDENTIAL:
            raise TokenError(MALFORMED_HEADER, "use 'Authorization: Bearer <token>'")
        return await anyio.to_thread.run_sync(_bearer, directory, credential, client, scope)
    if cookie:
        return await anyio.to_thread.run_sync(_session, directory, cookie[:_MAX_CREDENTIAL], client)
    raise MissingCredentials


def _bearer(directory: Directory, credential: str, client: Client, scope: str) -> Caller:
    if credential.startswith(PREFIX):
        token = directory.tokens.validate(credential, scope=scope, client=client)
        subject = directory.subject(token.principal_id, auth_strength=AuthStrength.PASSWORD)
        return _caller(subject, client, None)
    identity = directory.external.bearer(credential, client)
    subject = directory.subject(identity.principal.id, auth_strength=identity.auth_strength)
    return _caller(subject, client, None)


def _session(directory: Directory, secret: str, client: Client) -> Caller:
    session = directory.sessions.validate(secret, client)
    subject = directory.subject(session.principal_id, auth_strength=session.auth_strength)
    return _caller(subject, client, session.id)


def _caller(subject: Subject, client: Client, session_id: str | None) -> Caller:
    actor = Actor(
        principal_id=subject.principal_id,
        roles=tuple(dict.fromkeys(str(h.role) for h in subject.roles)),
        zone=subject.zone,
        session_id=session_id,
        ip=client.ip,
        device_id=client.device_id,
        user_agent=client.user_agent,
        auth_strength=int(subject.auth_strength),
    )
    return Caller(subject, actor, client)
