"""Signing in from a browser: ``/api/v1/sessions``.

``POST /sessions`` checks a password (and the TOTP code when the account is enrolled)
through the directory, which counts failures, locks accounts and audits every outcome,
and answers with the session cookie the gateway and the API accept. The cookie is
``HttpOnly``, ``SameSite=Strict`` (no cross-site request carries it: the CSRF defence),
``Secure`` over HTTPS, and lives as long as the browser session; the server enforces the
site's idle and absolute timeouts. A long-lived device cookie is set on first sign-in so
the monitor's "new device" rule can tell this browser from the next.

Every refusal answers the same 401 whether the user is unknown, the password wrong or the
account locked or disabled, so an attacker learns nothing about accounts; only a right
password on an enrolled account is told that a one-time code is needed.
"""

from __future__ import annotations

import secrets

import anyio.to_thread
from fastapi import APIRouter, Depends, Response
from pydantic import BaseModel, Field
from starlette.requests import Request
from starlette.responses import JSONResponse

from pacsguard.directory import Client, IssuedSession
from pacsguard.errors import AuthenticationError, BadRequest, MfaError
from pacsguard.gateway import Gateway
from pacsguard.gateway.api import api_caller
from pacsguard.gateway.auth import DEVICE_COOKIE, SESSION_COOKIE, Caller, client_of
from pacsguard.gateway.errors import UNAUTHORIZED_CHALLENGE, problem

__all__ = ["Credentials", "SessionOut", "sessions_router"]

REFUSED = "the user name, password or code is not valid, or the account cannot sign in now"
DEVICE_COOKIE_DAYS = 400  # the longest lifetime browsers keep a cookie


class Credentials(BaseModel):
    """A sign-in: the principal id, the password and, when enrolled, the TOTP code."""

    username: str = Field(min_length=1, max_length=128)
    password: str = Field(min_length=1, max_length=1024)
    code: str | None = Field(default=None, pattern=r"^[0-9]{6,8}$")


class SessionOut(BaseModel):
    """A session as its owner sees it (never its secret)."""

    session_id: str
    principal_id: str
    auth_strength: int
    created_at: str
    ip: str | None
    device_id: str | None


def sessions_router(gateway: Gateway) -> APIRouter:
    """``POST /sessions`` (sign in), ``GET /sessions/current``, ``DELETE /sessions/current``."""
    router = APIRouter(tags=["sessions"])
    session_caller = api_caller(gateway)

    @router.post("/sessions", status_code=201, summary="Sign in; sets the session cookie")
    async def sign_in(credentials: Credentials, request: Request) -> Response:
        client = client_of(request)
        device = client.device_id or secrets.token_urlsafe(16)
        client = Client(client.ip, device, client.user_agent)
        try:
            issued = await anyio.to_thread.run_sync(_login, gateway, credentials, client)
        except MfaError as exc:
            if exc.reason != "mfa_required":
                return _refused()
            return JSONResponse({"error": "a one-time code is required", "mfa_required": True}, status_code=401,
                                headers={"WWW-Authenticate": UNAUTHORIZED_CHALLENGE})  # fmt: skip
        except AuthenticationError:
            return _refused()
        response = JSONResponse(_out(issued).model_dump(), status_code=201)
        secure = request.url.scheme == "https"
        response.set_cookie(SESSION_COOKIE, issued.secret, httponly=True, secure=secure, samesite="strict", path="/")
        if request.cookies.get(DEVICE_COOKIE) != device:
            response.set_cookie(DEVICE_COOKIE, device, max_age=DEVICE_COOKIE_DAYS * 86400, httponly=True,
                                secure=secure, samesite="strict", path="/")  # fmt: skip
        return response

    @router.get("/sessions/current", summary="The caller's session")
    async def current(caller: Caller = Depends(session_caller)) -> SessionOut:  # noqa: B008 (FastAPI's idiom)
        session_id = _session_id(caller)
        info = await anyio.to_thread.run_sync(gateway.directory.sessions.get, session_id)
        return _out(IssuedSession("", info))

    @router.delete("/sessions/current", status_code=204, summary="Sign out; ends the session")
    async def sign_out(caller: Caller = Depends(session_caller)) -> Response:  # noqa: B008
        session_id = _session_id(caller)
        by = caller.subject.principal_id
        await anyio.to_thread.run_sync(lambda: gateway.directory.sessions.revoke(session_id, by=by, reason="sign-out"))
        response = Response(status_code=204)
        response.delete_cookie(SESSION_COOKIE, path="/")
        return response

    return router


def _login(gateway: Gateway, credentials: Credentials, client: Client) -> IssuedSession:
    auth = gateway.directory.auth
    return auth.login(credentials.username, credentials.password, totp_code=credentials.code, client=client)


def _session_id(caller: Caller) -> str:
    if caller.actor.session_id is None:
        raise BadRequest("this request was not made with a session cookie")
    return caller.actor.session_id


def _refused() -> Response:
    return problem(401, REFUSED, {"WWW-Authenticate": UNAUTHORIZED_CHALLENGE})


def _out(issued: IssuedSession) -> SessionOut:
    info = issued.session
    return SessionOut(
        session_id=info.id,
        principal_id=info.principal_id,
        auth_strength=int(info.auth_strength),
        created_at=info.created_at.isoformat(),
        ip=info.client.ip,
        device_id=info.client.device_id,
    )
