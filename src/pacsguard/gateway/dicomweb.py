"""The DICOMweb gateway (PS3.18): QIDO-RS, WADO-RS, STOW-RS and deletion in front of the
zones' archives, as one ASGI app mounted at ``/dicomweb``.

Every request is authenticated, then decided by the decision point before anything
reaches an archive. A study the caller may not see is answered exactly like one that does
not exist (``errors.not_found``) and audited as ``access.denied``; a permitted read is
audited durably before its first byte leaves. Bad input is a 4xx with an audit event.
"""

from __future__ import annotations

import anyio.to_thread
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import Receive, Scope, Send

from pacsguard.archives import DICOM_ACCEPT, Archive, CatalogueEntry, Level, QidoQuery, is_valid_uid
from pacsguard.domain import Action, BreakGlassGrant, Decision, ObjectRef, Outcome, Purpose
from pacsguard.errors import (
    ArchiveNotFound,
    ArchiveQueryError,
    ArchiveUnavailable,
    AuthenticationError,
    BadRequest,
    Forbidden,
    RequestTooLarge,
)
from pacsguard.gateway import stow
from pacsguard.gateway.auth import Caller, MissingCredentials
from pacsguard.gateway.core import Gateway, Intent, resource_of
from pacsguard.gateway.errors import error_response, headless, not_found, problem, unauthorized
from pacsguard.gateway.federation import Found, search_pages
from pacsguard.gateway.paths import Target, check, route
from pacsguard.gateway.streaming import bulk_of, frames_of, read_instance, related_response, rewrite_urls, stream

__all__ = ["DicomWebApp"]

DICOM_JSON = "application/dicom+json"
_MAX_HEADER = 512


class Hidden(Exception):
    """The study is unknown or denied: answered as not found (already audited)."""


class DicomWebApp:
    """The ASGI app serving the DICOMweb root; mount it at ``/dicomweb``."""

    def __init__(self, gateway: Gateway, root: str = "/dicomweb") -> None:
        self.gateway = gateway
        self.root = root

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        request = Request(scope, receive)
        response = await self.handle(request)
        await response(scope, receive, send)

    async def handle(self, request: Request) -> Response:
        """Admit (``Gateway.admit``: address, credentials, each refusal audited), match,
        decide, answer; every failure becomes a status here."""
        try:
            caller = await self.gateway.admit(request)
        except Forbidden as exc:
            return problem(403, str(exc))
        except (MissingCredentials, AuthenticationError) as exc:
            return unauthorized(not isinstance(exc, MissingCredentials))
        except Exception as exc:
            return error_response(exc)
        response = await self._answer(request, caller)
        return headless(response) if request.method == "HEAD" else response

    async def _answer(self, request: Request, caller: Caller) -> Response:
        target: Target | None = None
        try:
            target = route(request.method, _route_path(request))
            if target is None:
                raise Hidden
            check(target)
            return await self._serve(request, caller, target, intent_of(request))
        except Hidden:
            return not_found()
        except (BadRequest, ArchiveQueryError, RequestTooLarge) as exc:
            return await self._refuse(caller, target, exc)
        except Exception as exc:
            return error_response(exc)

    async def _refuse(self, caller: Caller, target: Target | None, exc: Exception) -> Response:
        """Audit a bad request (outcome ``failure``) and answer 400 or 413."""
        try:
            await self.gateway.record(
                caller,
                target.event_type if target else "study.read",
                outcome=Outcome.FAILURE,
                objects=ObjectRef(study_uid=target.study if target and is_valid_uid(target.study or "") else None),
                detail={"reason": str(exc)[:500], "refused": type(exc).__name__},
            )
        except Exception as audit_exc:
            return error_response(audit_exc)
        return error_response(exc)

    async def _serve(self, request: Request, caller: Caller, target: Target, intent: Intent) -> Response:
        base = self._base(request)
        if target.kind == "qido":
            return await self.qido(request, caller, target, intent, base)
        if target.kind == "stow":
            return await stow.store(self.gateway, request, caller, target.study, intent, base)
        entry, decision, grant, archive = await self.authorise(caller, target, intent, _ACTION[target.kind])
        if target.kind == "delete":
            return await self.delete(caller, target, intent, entry, decision, grant, archive)
        if target.kind == "metadata":
            return await self.metadata(caller, target, intent, (entry, decision, grant), archive, base)
        if target.kind in ("frames", "bulk"):
            return await self.part_of_instance(caller, target, intent, (entry, decision, grant), archive)
        return await self.retrieve(request, caller, target, intent, (entry, decision, grant), archive)

    def _base(self, request: Request) -> str:
        public = self.gateway.options.public_url.rstrip("/")
        if not public:
            public = str(request.url.replace(path="", query="", fragment="")).rstrip("/")
        return public + self.root

    # --- decisions on one study ----------------------------------------------------------
    async def authorise(
        self, caller: Caller, target: Target, intent: Intent, action: Action
    ) -> tuple[CatalogueEntry, Decision, BreakGlassGrant | None, Archive]:
        """Decide ``action`` on the target's study (break-glass if asked and needed).

        Raises ``Hidden`` after recording ``access.denied`` when it is unknown or denied.
        """
        gw = self.gateway
        assert target.study is not None
        entry = await gw.locate(target.study)
        decision, grant = await self.decide_one(caller, action, entry, intent)
        archive = gw.archive_for(entry) if entry else None
        if entry is None or decision is None or not decision.permitted or archive is None:
            reason = "unknown" if entry is None else "denied" if archive is not None else "no-archive"
            await gw.record(
                caller, "access.denied", outcome=Outcome.DENIED, objects=_objects(target, entry), decision=decision,
                grant=grant, detail={"action": action.value, "purpose": intent.purpose.value, "reason": reason},
            )  # fmt: skip
            raise Hidden
        return entry, decision, grant, archive

    async def decide_one(
        self, caller: Caller, action: Action, entry: CatalogueEntry | None, intent: Intent
    ) -> tuple[Decision | None, BreakGlassGrant | None]:
        """The decision on one study; a denial with a break-glass reason asks for a grant."""
        if entry is None:
            return None, None
        gw = self.gateway
        (decision,) = await gw.decide(caller, action, [resource_of(entry)], intent)
        if decision.permitted or intent.break_glass_reason is None:
            return decision, None
        grant = await gw.break_glass(caller, entry, intent)
        if grant is None:
            return decision, None
        (decision,) = await gw.decide(caller, action, [resource_of(entry)], intent, grant)
        return decision, grant

    # --- QIDO-RS ---------------------------------------------------------------------------
    async def qido(self, request: Request, caller: Caller, target: Target, intent: Intent, base: str) -> Response:
        """Federated search, each upstream page filtered by one batched decision before
        the client's page is cut (``federation.search_pages``)."""
        gw = self.gateway
        query = QidoQuery.parse(request.url.query, target.level)

        settled: dict[str, Decision] = {}  # the break-glass decision on the path's study, asked once

        async def decide(batch: list[Found]) -> list[bool]:
            return await self._permitted(caller, intent, target, batch, settled)

        merged = await search_pages(
            gw.archives, query, decide, study_uid=target.study, series_uid=target.series,
            timeout=gw.options.archive_timeout, cap=gw.options.max_results,
        )  # fmt: skip
        if gw.archives and len(merged.failed) == len(gw.archives):
            await gw.record(
                caller, "study.query", outcome=Outcome.ERROR, objects=ObjectRef(study_uid=target.study),
                detail={"action": "query", "purpose": intent.purpose.value, "failed": merged.failed},
            )  # fmt: skip
            raise ArchiveUnavailable(f"no archive answered: {', '.join(merged.failed)}")
        end = None if query.limit is None else query.offset + query.limit
        page = merged.permitted[query.offset : end]
        detail = {
            "action": "query", "purpose": intent.purpose.value, "level": target.level.value,
            "returned": len(page), "filtered": merged.refused, "matched": len(merged.permitted),
            "examined": merged.examined, "complete": merged.complete, "failed": merged.failed,
            **({"method": "HEAD"} if target.head else {}),
        }  # fmt: skip
        await gw.record(caller, "study.query", objects=_query_objects(target, query, len(page)), detail=detail)
        warn = merged.failed or merged.truncated
        headers = {"Warning": _warning(merged.failed, merged.truncated)} if warn else None
        return JSONResponse(rewrite_urls(page, base), media_type=DICOM_JSON, headers=headers)

    async def _permitted(
        self, caller: Caller, intent: Intent, target: Target, results: list[Found], settled: dict[str, Decision]
    ) -> list[bool]:
        gw = self.gateway
        uids = list(dict.fromkeys(r.study_uid for r in results))
        entries = await gw.entries(uids)
        unknown = {r.study_uid: (r.zone, r.item) for r in results if r.study_uid not in entries}
        if unknown:
            entries.update(await gw.record_found(unknown))
        studies = [entries[u] for u in uids]
        decisions = dict(zip(uids, await gw.decide(caller, Action.QUERY, [resource_of(e) for e in studies], intent),
                             strict=True))  # fmt: skip
        study = target.study
        if study is not None and study in entries and not decisions[study].permitted:
            if study not in settled:
                decision, _ = await self.decide_one(caller, Action.QUERY, entries[study], intent)
                settled[study] = decision or decisions[study]
            decisions[study] = settled[study]
        return [decisions[r.study_uid].permitted for r in results]

    # --- WADO-RS ---------------------------------------------------------------------------
    async def retrieve(
        self, request: Request, caller: Caller, target: Target, intent: Intent, decided: _Decided, archive: Archive
    ) -> Response:
        """Stream a study, series or instance; ``study.read`` is durable before any byte."""
        assert target.study is not None
        accept = _accept(request)
        if target.instance and target.series:
            retrieved = await archive.retrieve_instance(target.study, target.series, target.instance, accept)
        elif target.series:
            retrieved = await archive.retrieve_series(target.study, target.series, accept)
        else:
            retrieved = await archive.retrieve_study(target.study, accept)
        try:
            size = None if target.head else retrieved.content_length
            await self._read_event(caller, target, intent, decided, "retrieve", bytes_=size)
        except BaseException:
            await retrieved.aclose()
            raise
        if target.head:  # the archive found it; nothing more is read
            await retrieved.aclose()
        return stream(retrieved)

    async def metadata(
        self, caller: Caller, target: Target, intent: Intent, decided: _Decided, archive: Archive, base: str
    ) -> Response:
        """Metadata of a study, series or instance, with URLs pointing at the gateway."""
        assert target.study is not None
        items = await archive.metadata(target.study, target.series)
        if target.instance:
            items = [i for i in items if i.get("00080018", {}).get("Value", [None])[0] == target.instance]
            if not items:
                raise ArchiveNotFound("no such instance")
        await self._read_event(caller, target, intent, decided, "metadata", count=len(items))
        return JSONResponse(rewrite_urls(items, base), media_type=DICOM_JSON)

    async def part_of_instance(
        self, caller: Caller, target: Target, intent: Intent, decided: _Decided, archive: Archive
    ) -> Response:
        """Frames or bulk data, cut from the instance the archive returns."""
        assert target.study
        assert target.series
        assert target.instance
        assert target.extra
        numbers = _frame_numbers(target.extra) if target.kind == "frames" else []
        tag = _tag(target.extra) if target.kind == "bulk" else 0
        retrieved = await archive.retrieve_instance(target.study, target.series, target.instance, DICOM_ACCEPT)
        data = await read_instance(retrieved, self.gateway.options.max_instance_bytes)
        payloads = frames_of(data, numbers) if target.kind == "frames" else [bulk_of(data, tag)]
        size = sum(len(p) for p in payloads)
        await self._read_event(caller, target, intent, decided, target.kind, count=1, bytes_=size)
        return related_response(payloads)

    async def _read_event(
        self, caller: Caller, target: Target, intent: Intent, decided: _Decided, kind: str,
        count: int | None = None, bytes_: int | None = None,
    ) -> None:  # fmt: skip
        entry, decision, grant = decided
        await self.gateway.record(
            caller, "study.read", objects=_objects(target, entry, count, bytes_), decision=decision, grant=grant,
            detail={"action": "read", "purpose": intent.purpose.value, "kind": kind,
                    "break_glass": grant.id if grant else None, **({"method": "HEAD"} if target.head else {})},
        )  # fmt: skip

    # --- deletion ---------------------------------------------------------------------------
    async def delete(
        self, caller: Caller, target: Target, intent: Intent, entry: CatalogueEntry, decision: Decision,
        grant: BreakGlassGrant | None, archive: Archive,
    ) -> Response:  # fmt: skip
        """Delete a study: its instances are counted, the event is durable first (fail
        closed), then the archive deletes and the catalogue forgets the study. A deletion
        the archive then refuses is recorded again with outcome ``error``."""
        assert target.study is not None
        gw = self.gateway
        found = await archive.search_instances(target.study, None, QidoQuery(level=Level.INSTANCE))
        series = {i.get("0020000E", {}).get("Value", [""])[0] for i in found}
        objects = _objects(target, entry, count=len(found))
        detail = {"action": "delete", "purpose": intent.purpose.value, "archive": archive.name,
                  "series": len(series), "instances": len(found)}  # fmt: skip
        await gw.record(caller, "study.delete", objects=objects, decision=decision, grant=grant, detail=detail)
        try:
            await archive.delete(target.study)
        except Exception as exc:
            await gw.record(caller, "study.delete", outcome=Outcome.ERROR, objects=objects, decision=decision,
                            grant=grant, detail={**detail, "error": str(exc)[:300]})  # fmt: skip
            raise
        await anyio.to_thread.run_sync(gw.catalogue.forget, target.study)
        return Response(status_code=204)


_ACTION = {"retrieve": Action.READ, "metadata": Action.READ, "frames": Action.READ, "bulk": Action.READ,
           "delete": Action.DELETE}  # fmt: skip
_Decided = tuple[CatalogueEntry, Decision, BreakGlassGrant | None]


def intent_of(request: Request) -> Intent:
    """Purpose of use (``X-Purpose``, default treatment) and a break-glass reason.

    Raises ``BadRequest`` for an unknown purpose or an overlong reason.
    """
    purpose_text = request.headers.get("x-purpose", Purpose.TREATMENT.value).strip().lower()
    try:
        purpose = Purpose(purpose_text)
    except ValueError:
        options = ", ".join(p.value for p in Purpose)
        raise BadRequest(f"X-Purpose {purpose_text[:40]!r} is not a purpose of use; use one of {options}") from None
    reason = request.headers.get("x-break-glass-reason")
    if reason is not None and len(reason) > _MAX_HEADER:
        raise BadRequest(f"X-Break-Glass-Reason is longer than {_MAX_HEADER} characters")
    return Intent(purpose, reason.strip() if reason else None)


def _route_path(request: Request) -> str:
    """The decoded path below the mount point (``/studies/…``)."""
    path: str = request.scope["path"]
    root: str = request.scope.get("root_path", "")
    return path[len(root) :] if root and path.startswith(root) else path


def _accept(request: Request) -> str:
    accept = request.headers.get("accept", "").strip()
    if not accept or accept == "*/*":
        return DICOM_ACCEPT
    if len(accept) > _MAX_HEADER or not accept.isprintable():
        raise BadRequest("the Accept header is too long or holds control characters")
    return accept


def _frame_numbers(text: str) -> list[int]:
    try:
        numbers = [int(n) for n in text.split(",")]
    except ValueError:
        raise BadRequest(f"frame list {text[:40]!r} is not comma-separated numbers") from None
    if not numbers or len(numbers) > 10_000 or any(n < 1 for n in numbers):
        raise BadRequest("frame numbers start at 1")
    return numbers


def _tag(text: str) -> int:
    if len(text) != 8:
        raise BadRequest(f"bulk data tag {text[:40]!r} is not 8 hexadecimal digits")
    try:
        return int(text, 16)
    except ValueError:
        raise BadRequest(f"bulk data tag {text[:40]!r} is not 8 hexadecimal digits") from None


def _objects(
    target: Target, entry: CatalogueEntry | None, count: int | None = None, bytes_: int | None = None
) -> ObjectRef:
    return ObjectRef(
        patient_id=(entry.patient_id or None) if entry else None,
        study_uid=target.study,
        series_uid=target.series,
        instance_uid=target.instance,
        zone=entry.zone if entry else None,
        count=count,
        bytes=bytes_,
    )


def _query_objects(target: Target, query: QidoQuery, count: int) -> ObjectRef:
    study = target.study or (query.study_uids[0] if len(query.study_uids) == 1 else None)
    return ObjectRef(patient_id=query.patient_id, study_uid=study, series_uid=target.series, count=count)


def _warning(failed: list[str], truncated: bool) -> str:
    parts = []
    if failed:
        parts.append(f"archives not answering: {', '.join(failed)}; results may be incomplete")
    if truncated:
        parts.append("an archive returned the most results the gateway takes; narrow the search")
    return '299 pacsguard "' + "; ".join(parts).replace('"', "'") + '"'
