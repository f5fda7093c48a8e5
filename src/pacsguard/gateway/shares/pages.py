"""The recipient's routes (Starlette): ``/share/{token}`` (the gates and the study list),
``/share/{token}/preview/{study}.png`` and ``/share/{token}/download``.

Every refusal is the same 404 page with the same headers, whatever the reason. After the
passcode and the one-time code (or at once, for a link without gates) the recipient gets
a cookie: signed with the link's own key, bound to the link, HttpOnly, SameSite=Strict,
Secure over HTTPS, scoped to the link's path and short-lived. Forms carry a form token
signed the same way. Pages forbid framing, caching, referrers and every script.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs

from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from pacsguard.domain import Actor
from pacsguard.errors import ArchiveError, ShareRefused
from pacsguard.gateway.auth import client_of
from pacsguard.gateway.errors import error_response
from pacsguard.gateway.exports import started_zip, zip_studies
from pacsguard.gateway.shares import html
from pacsguard.gateway.shares.preview import PreviewUnavailable, placeholder_png, study_preview
from pacsguard.gateway.shares.recipient import CodeNotSent, RecipientDesk, Step
from pacsguard.gateway.shares.store import ShareLink
from pacsguard.gateway.shares.tokens import Pass, form_token, valid_form_token, write_pass

__all__ = ["PASS_COOKIE", "SECURITY_HEADERS", "refusal", "share_pages"]

PASS_COOKIE = "pacsguard_share"  # noqa: S105 (a cookie name)
_MAX_FORM = 4096
SECURITY_HEADERS = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": (
        "default-src 'none'; img-src 'self'; style-src 'unsafe-inline'; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'"
    ),
}


def refusal() -> Response:
    """The one answer to every link that cannot be opened."""
    return HTMLResponse(html.refusal_page(), status_code=404, headers=SECURITY_HEADERS)


def _actor(request: Request) -> Actor:
    client = client_of(request)
    return Actor(ip=client.ip, device_id=client.device_id, user_agent=client.user_agent)


class SharePages:
    """The recipient's request handlers around one ``RecipientDesk``."""

    def __init__(self, desk: RecipientDesk) -> None:
        self.desk = desk
        self.gateway = desk.gateway

    def routes(self) -> list[BaseRoute]:
        return [
            Route("/share/{token}", self.page, methods=["GET", "POST"]),
            Route("/share/{token}/preview/{study}.png", self.preview, methods=["GET"]),
            Route("/share/{token}/download", self.download, methods=["GET"]),
        ]

    async def page(self, request: Request) -> Response:
        token = request.path_params["token"]
        try:
            if request.method == "POST":
                return await self._post(request, token)
            return await self._get(request, token)
        except ShareRefused:
            return refusal()

    async def _get(self, request: Request, token: str, message: str | None = None, status: int = 200) -> Response:
        actor = _actor(request)
        link, grant = await self.desk.find(token, actor, request.cookies.get(PASS_COOKIE), "page")
        step = self.desk.step(link, grant)
        if step is not Step.OPEN:
            return self._gate(token, link, step, message, status)
        opened = grant is not None and grant.stage == Step.OPEN
        fresh = None if opened else await self.desk.admit(link, actor, "page")
        await self.desk.opened(link, actor, "page")
        entries = await self.gateway.entries(link.studies)
        shown = [entries[uid] for uid in link.studies if uid in entries]
        expires = link.expires_at.strftime("%Y-%m-%d %H:%M")
        body = html.list_page(token, shown, expires, self.desk.service.site_name)
        response = HTMLResponse(body, headers=SECURITY_HEADERS)
        if fresh is not None:
            self._set_pass(request, response, token, link, fresh)
        return response

    def _gate(self, token: str, link: ShareLink, step: Step, message: str | None, status: int) -> Response:
        form = form_token(link.secret, self.desk.now())
        if step is Step.PASSCODE:
            return HTMLResponse(html.passcode_page(token, form, message), status, headers=SECURITY_HEADERS)
        body = html.code_page(token, form, link.recipient or "", message)
        return HTMLResponse(body, status, headers=SECURITY_HEADERS)

    async def _post(self, request: Request, token: str) -> Response:
        actor = _actor(request)
        link, grant = await self.desk.find(token, actor, request.cookies.get(PASS_COOKIE), "form")
        form = await _form(request)
        step = self.desk.step(link, grant)
        if not valid_form_token(link.secret, form.get("form"), self.desk.now()):
            return self._gate(token, link, step, "The form had expired: please try again.", 400)
        action = form.get("action", "")
        if step is Step.PASSCODE and action == "passcode":
            return await self._passcode(request, token, link, actor, form.get("passcode", ""))
        if step is Step.CODE and action == "send":
            return await self._send(token, link, actor)
        if step is Step.CODE and action == "code":
            if not await self.desk.check_code(link, actor, form.get("code", "")):
                return self._gate(token, link, step, "Wrong or expired code.", 403)
            return await self._onward(request, token, link, None, actor)
        return _see(token)

    async def _passcode(self, request: Request, token: str, link: ShareLink, actor: Actor, passcode: str) -> Response:
        if not await self.desk.check_passcode(link, actor, passcode):
            return self._gate(token, link, Step.PASSCODE, "Wrong passcode.", 403)
        halfway = self.desk.grant(link, Step.PASSCODE) if link.recipient is not None else None
        return await self._onward(request, token, link, halfway, actor)

    async def _send(self, token: str, link: ShareLink, actor: Actor) -> Response:
        try:
            await self.desk.send_code(link, actor)
        except CodeNotSent as exc:
            return self._gate(token, link, Step.CODE, str(exc), 503 if exc.retry_later else 429)
        return self._gate(token, link, Step.CODE, "We sent you a code: it is valid for a few minutes.", 200)

    async def _onward(
        self, request: Request, token: str, link: ShareLink, granted: Pass | None, actor: Actor
    ) -> Response:
        """Redirect to the page, carrying the next pass: ``granted`` (half-way), or a
        counted open when every gate is passed."""
        grant = granted or await self.desk.admit(link, actor, "form")
        response = _see(token)
        self._set_pass(request, response, token, link, grant)
        return response

    def _set_pass(self, request: Request, response: Response, token: str, link: ShareLink, grant: Pass) -> None:
        https = request.url.scheme == "https" or self.gateway.options.public_url.startswith("https:")
        max_age = max(1, int((grant.until - self.desk.now()).total_seconds()))
        response.set_cookie(
            PASS_COOKIE, write_pass(link.secret, grant), max_age=max_age, path=f"/share/{token}",
            secure=https, httponly=True, samesite="strict",
        )  # fmt: skip

    async def session(self, request: Request, what: str) -> tuple[ShareLink, Actor]:
        """The link of a sub-resource request with an open session; ``ShareRefused`` else."""
        actor = _actor(request)
        link, grant = await self.desk.find(request.path_params["token"], actor, request.cookies.get(PASS_COOKIE), what)
        if grant is None or grant.stage != Step.OPEN:
            await self.desk.refuse(link, actor, what, "no session")
        return link, actor

    async def preview(self, request: Request) -> Response:
        study = request.path_params["study"]
        try:
            link, actor = await self.session(request, "preview")
            if study not in link.studies:
                await self.desk.refuse(link, actor, "preview", "study not shared")
            entry = await self.gateway.locate(study)
            archive = self.gateway.archive_for(entry) if entry else None
            if archive is None:
                await self.desk.refuse(link, actor, "preview", "study gone")
            await self.desk.opened(link, actor, "preview", study)
        except ShareRefused:
            return refusal()
        try:
            png = await study_preview(archive, study)
        except PreviewUnavailable:
            png = placeholder_png()
        except ArchiveError as exc:
            return error_response(exc)
        return Response(png, media_type="image/png", headers=SECURITY_HEADERS)

    async def download(self, request: Request) -> Response:
        """A ZIP of the link's studies (or of the one ``?study=``), streamed."""
        try:
            link, actor = await self.session(request, "download")
            wanted = request.query_params.get("study")
            if wanted is not None and wanted not in link.studies:
                await self.desk.refuse(link, actor, "download", "study not shared")
            uids = [wanted] if wanted is not None else list(link.studies)
            found = await self.gateway.entries(uids)
            entries = [found[uid] for uid in uids if uid in found and self.gateway.archive_for(found[uid])]
            if not entries:
                await self.desk.refuse(link, actor, "download", "study gone")
            await self.desk.opened(link, actor, "download", wanted)
        except ShareRefused:
            return refusal()
        stream = zip_studies(
            self.gateway, entries, on_study=self.desk.study_read(link, actor),
            on_failure=self.desk.study_failed(link, actor), manifest={"share": link.id, "shared_by": link.creator},
        )  # fmt: skip
        stamp = self.desk.now().strftime("%Y%m%d-%H%M%S")
        headers = {**SECURITY_HEADERS, "Content-Disposition": f'attachment; filename="shared-{stamp}.zip"'}
        try:  # an archive or audit failure on the first study is a clean 502/503
            return await started_zip(stream, headers)
        except Exception as exc:
            return error_response(exc)


async def _form(request: Request) -> dict[str, str]:
    """An urlencoded form of at most 4 KiB, first value of each field."""
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > _MAX_FORM:
            return {}
    fields: dict[str, Any] = parse_qs(body.decode("utf-8", "replace"), max_num_fields=10)
    return {key: values[0] for key, values in fields.items() if values}


def _see(token: str) -> Response:
    return RedirectResponse(f"/share/{token}", status_code=303, headers=SECURITY_HEADERS)


def share_pages(desk: RecipientDesk) -> list[BaseRoute]:
    """The recipient's Starlette routes, for ``build_app``'s ``pages``."""
    return SharePages(desk).routes()
