"""The one place where the gateway turns exceptions into HTTP answers.

Every refusal that could reveal whether a study exists uses ``not_found()``: one body,
one set of headers, whatever the reason (no such study, denied by policy, an odd URL).
Anything unexpected becomes a generic 500: the traceback goes to the log, never to the
client.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from starlette.responses import JSONResponse, Response

from pacsguard.errors import (
    ArchiveNotFound,
    ArchiveQueryError,
    ArchiveUnavailable,
    AuditUnavailable,
    AuthenticationError,
    BadRequest,
    RequestTooLarge,
)

__all__ = ["UNAUTHORIZED_CHALLENGE", "error_response", "headless", "not_found", "problem", "unauthorized"]

log = logging.getLogger("pacsguard.gateway")

UNAUTHORIZED_CHALLENGE = 'Bearer realm="pacsguard"'


def problem(status: int, message: str, headers: dict[str, str] | None = None) -> Response:
    """A JSON error body ``{"error": message}`` with ``status``."""
    return JSONResponse({"error": message}, status_code=status, headers=headers)


def not_found() -> Response:
    """The answer for a study that does not exist, is denied, or a path that names nothing."""
    return problem(404, "not found")


def unauthorized(invalid: bool) -> Response:
    """401 with the Bearer challenge (RFC 6750 §3); ``invalid`` when credentials were refused."""
    challenge = UNAUTHORIZED_CHALLENGE + (', error="invalid_token"' if invalid else "")
    message = "the credentials are not valid" if invalid else "authentication required"
    return problem(401, message, {"WWW-Authenticate": challenge})


def headless(response: Response) -> Response:
    """The answer to HEAD: ``response``'s status and headers (Content-Length included
    when known), no body. A streamed body must already be closed by whoever opened it."""
    out = Response(status_code=response.status_code, headers=dict(response.headers))
    if "content-length" not in response.headers:  # a streamed body of unknown length: say nothing, not 0
        del out.headers["content-length"]
    return out


def error_response(exc: BaseException) -> Response:
    """The HTTP answer for ``exc``: 400, 401, 404, 413, 502, 503, or a generic 500."""
    for kinds, answer in _ANSWERS:
        if isinstance(exc, kinds):
            return answer(exc)
    log.exception("unexpected error in the DICOMweb gateway", exc_info=exc)
    return problem(500, "internal error; the incident was logged")


def _audit_down(exc: BaseException) -> Response:
    log.error("audit log unavailable; request refused: %s", exc)
    return problem(503, "the audit log is unavailable; nothing can be served until it recovers")


def _upstream(exc: BaseException) -> Response:
    log.warning("upstream archive failed: %s", exc)
    return problem(502, "the archive holding this data cannot be reached; try again later")


_ANSWERS: tuple[
    tuple[type[BaseException] | tuple[type[BaseException], ...], Callable[[BaseException], Response]], ...
] = (
    ((ArchiveQueryError, BadRequest), lambda exc: problem(400, str(exc))),
    (RequestTooLarge, lambda exc: problem(413, str(exc))),
    (AuthenticationError, lambda _: unauthorized(True)),
    (ArchiveNotFound, lambda _: not_found()),
    (AuditUnavailable, _audit_down),
    ((ArchiveUnavailable, asyncio.TimeoutError), _upstream),
)
