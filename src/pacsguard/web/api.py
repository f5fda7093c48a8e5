"""The JSON API at ``/api``: one FastAPI app, its OpenAPI document at ``/api/openapi.json``.

Each feature contributes an ``APIRouter`` (exports and share links from the gateway;
alerts, incidents and containment from the monitor); ``api_app`` puts them under ``/v1``
and turns pacsguard's errors into JSON answers in this one place:

| error | status |
| --- | --- |
| no credentials / refused credentials | 401 (with the Bearer challenge) |
| ``Forbidden`` | 403 |
| ``NotFound``, ``ArchiveNotFound`` | 404 |
| ``AlreadyExists``, ``ContainmentRefused``, ``IncidentConflict`` | 409 |
| ``BadRequest``, ``InvalidEntry``, ``ContainmentError``, ``IncidentError``, a body that fails validation | 400 |
| ``RequestTooLarge`` | 413 |
| ``AuditUnavailable`` | 503 |
| an archive that is down | 502 |
| anything else | 500, the traceback only in the server log |

Every body is ``{"error": "..."}``; a validation failure adds ``"problems"``, one per field.
"""

from __future__ import annotations

from collections.abc import Sequence

from fastapi import APIRouter, FastAPI
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from pacsguard import __version__
from pacsguard.errors import (
    AlreadyExists,
    ContainmentError,
    ContainmentRefused,
    Forbidden,
    IncidentConflict,
    IncidentError,
    InvalidEntry,
    NotFound,
    PacsguardError,
)
from pacsguard.gateway.auth import MissingCredentials
from pacsguard.gateway.errors import error_response, problem, unauthorized

__all__ = ["api_app"]


def api_app(routers: Sequence[APIRouter]) -> FastAPI:
    """The FastAPI app for ``/api``: ``routers`` under ``/v1``, errors answered as above."""
    app = FastAPI(
        title="pacsguard",
        version=__version__,
        description="Access control, audit and security monitoring in front of PACS.",
        openapi_url="/openapi.json",
        docs_url="/docs",
        redoc_url=None,
    )
    for router in routers:
        app.include_router(router, prefix="/v1")
    app.add_exception_handler(RequestValidationError, _invalid_body)
    app.add_exception_handler(HTTPException, _http_error)
    for kind in (PacsguardError, MissingCredentials, TimeoutError, Exception):  # Exception last: a 500
        app.add_exception_handler(kind, _error)
    return app


async def _invalid_body(request: Request, exc: Exception) -> Response:
    errors = exc.errors() if isinstance(exc, RequestValidationError) else []
    problems = [{"field": ".".join(str(p) for p in e.get("loc", ())), "message": e.get("msg", "")} for e in errors]
    return JSONResponse({"error": "the request does not match the API", "problems": problems}, status_code=400)


async def _http_error(request: Request, exc: Exception) -> Response:
    status = exc.status_code if isinstance(exc, HTTPException) else 500
    return problem(status, str(getattr(exc, "detail", "")) or "refused")


async def _error(request: Request, exc: Exception) -> Response:
    if isinstance(exc, MissingCredentials):
        return unauthorized(False)
    if isinstance(exc, Forbidden):
        return problem(403, str(exc))
    if isinstance(exc, NotFound):
        return problem(404, str(exc) or "not found")
    if isinstance(exc, (AlreadyExists, ContainmentRefused, IncidentConflict)):
        return problem(409, str(exc))
    if isinstance(exc, (InvalidEntry, ContainmentError, IncidentError)):
        return problem(400, str(exc))
    return error_response(exc)
