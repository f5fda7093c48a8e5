"""Request authentication: who is calling, from where, how strongly authenticated.

Four credentials are accepted, checked by the directory (which audits every refusal):
``Authorization: Bearer pgt_…`` (an API token with the ``dicomweb`` scope),
``Authorization: Bearer <JWT>`` (the site's OIDC issuer), the session cookie, or a
client certificate from the site CA presented in the TLS handshake (the ASGI ``tls``
extension, which ``pacsguard serve`` fills: see ``web.tls``). A certificate opens one
strength-3 session per TLS connection, kept in the connection's state, so a device's
keep-alive connection is one ``login.success``, not one per request. Explicit credentials
(a header or the cookie) win over the certificate.
"""

from __future__ import annotations

import contextlib
import hashlib
import ssl
from dataclasses import dataclass
from typing import Any

import anyio.to_thread
from starlette.requests import HTTPConnection

from pacsguard.directory import Client, Directory
from pacsguard.directory.tokens import PREFIX
from pacsguard.domain import Actor, AuthStrength, Subject
from pacsguard.errors import CertificateError, TokenError

__all__ = [
    "API_SCOPE",
    "DEVICE_COOKIE",
    "DEVICE_HEADER",
    "SCOPE",
    "SESSION_COOKIE",
    "TLS_CONNECTION_STATE",
    "Caller",
    "MissingCredentials",
    "authenticate",
    "client_of",
]

SCOPE = "dicomweb"  # the API token scope for /dicomweb
API_SCOPE = "api"  # the API token scope for /api/v1
TLS_CONNECTION_STATE = "pacsguard.connection"  # per-connection dict in the ASGI tls extension
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
    tls = conn.scope.get("extensions", {}).get("tls")
    if isinstance(tls, dict) and tls.get("client_cert_chain"):
        return await anyio.to_thread.run_sync(_certificate, directory, tls, client)
    raise MissingCredentials


def _certificate(directory: Directory, tls: dict[str, Any], client: Client) -> Caller:
    """The session this TLS connection's certificate opened, or a new one."""
    state = tls.get(TLS_CONNECTION_STATE)
    try:
        der = ssl.PEM_cert_to_DER_cert(str(tls["client_cert_chain"][0]))
    except ValueError as exc:
        raise CertificateError("malformed", "the TLS layer passed an unreadable certificate") from exc
    client = Client(client.ip, client.device_id or f"cert:{hashlib.sha256(der).hexdigest()[:32]}", client.user_agent)
    secret = state.get("session") if isinstance(state, dict) else None
    if secret is not None:
        with contextlib.suppress(TokenError):  # ended since (timeout, containment): log in again
            return _session(directory, secret, client)
    issued = directory.external.login_certificate(der, client)
    if isinstance(state, dict):
        state["session"] = issued.secret
    subject = directory.subject(issued.session.principal_id, auth_strength=issued.session.auth_strength)
    return _caller(subject, client, issued.session.id)


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
