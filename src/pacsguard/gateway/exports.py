"""Exports: ``POST /api/v1/exports`` streams a ZIP of the studies the caller may export,
``GET /api/v1/exports/{id}`` tells the UI how far it got.

Every requested study is decided (``Action.EXPORT``, with consents, one batched decision)
before anything is fetched. A study that is unknown or not permitted is treated the same
way: audited as ``access.denied`` and listed in the manifest as not exported, without a
reason; when none is permitted the answer is the plain 404 of an unknown study.

The ZIP (``zip_studies``) holds ``<PatientID>/<StudyUID>/<SeriesUID>/<SOPInstanceUID>.dcm``
for each instance, byte for byte as the archive stores it, then ``manifest.json``. Each
study is one ``study.export`` event with its instance count and bytes, durable before the
study's first byte leaves; an audit failure stops the export (503 before the first byte,
a cut-off ZIP after), and so does an archive that fails (502 before the first byte, a
cut-off ZIP and a ``study.export`` with outcome ``error`` after).
"""

from __future__ import annotations

import json
import logging
import uuid
from collections import OrderedDict
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import IO, Annotated, Any, Literal

import anyio
import httpx
from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict, Field
from starlette.responses import StreamingResponse
from starlette.types import Send

from pacsguard.archives import DICOM_ACCEPT, CatalogueEntry, is_valid_uid
from pacsguard.domain import Action, Decision, ObjectRef, Outcome, Purpose
from pacsguard.errors import ArchiveError, ArchiveUnavailable, AuditError, BadRequest, NotFound
from pacsguard.gateway.api import api_caller
from pacsguard.gateway.auth import Caller
from pacsguard.gateway.core import Gateway, Intent, resource_of
from pacsguard.gateway.zipstream import (
    SealedSpool,
    SpooledInstance,
    ZipSink,
    entry_info,
    open_zip,
    safe_component,
    spool_study,
)

__all__ = [
    "MAX_STUDIES",
    "ExportProgress",
    "ExportRegistry",
    "ExportRequest",
    "ExportStatus",
    "ZipResponse",
    "exports_router",
    "started_zip",
    "zip_studies",
]

log = logging.getLogger("pacsguard.gateway.exports")

MAX_STUDIES = 500
MANIFEST = "manifest.json"
OnStudy = Callable[[CatalogueEntry, int, int], Awaitable[None]]
OnFailure = Callable[[CatalogueEntry, BaseException], Awaitable[None]]


@dataclass
class ExportProgress:
    """How far one export got; ``zip_studies`` updates it as bytes leave."""

    id: str
    owner: str | None
    studies_total: int
    started_at: datetime
    state: Literal["running", "done", "failed"] = "running"
    studies_done: int = 0
    instances_done: int = 0
    bytes_done: int = 0
    finished_at: datetime | None = None
    error: str | None = None

    @classmethod
    def start(cls, now: datetime, studies_total: int, owner: str | None = None) -> ExportProgress:
        """A running export with a fresh random id."""
        return cls(uuid.uuid4().hex, owner, studies_total, now)

    def finish(self, now: datetime, error: str | None = None) -> None:
        """Mark it done, or failed with ``error`` (the first outcome sticks)."""
        if self.state == "running":
            self.state = "failed" if error else "done"
            self.error = error
            self.finished_at = now


@dataclass
class _Exported:
    entry: CatalogueEntry
    folder: str
    instances: int
    bytes: int


@dataclass
class _Zip:
    """The ZIP being written and the names already in it."""

    sink: ZipSink = field(default_factory=ZipSink)
    names: set[str] = field(default_factory=set)
    writer: IO[bytes] | None = None

    def __post_init__(self) -> None:
        self.file = open_zip(self.sink)

    def discard(self) -> None:
        """Close what is open and drop what was not handed out (after a failure)."""
        if self.writer is not None:
            self.writer.close()
        if self.file.fp is not None:
            self.file.close()
        self.sink.drain()

    def unique(self, name: str) -> str:
        stem, dot, ext = name.rpartition(".")
        candidate, n = name, 1
        while candidate in self.names:
            n += 1
            candidate = f"{stem}-{n}{dot}{ext}"
        self.names.add(candidate)
        return candidate


async def zip_studies(
    gateway: Gateway,
    entries: Sequence[CatalogueEntry],
    *,
    progress: ExportProgress | None = None,
    on_study: OnStudy | None = None,
    on_failure: OnFailure | None = None,
    manifest: Mapping[str, Any] | None = None,
) -> AsyncGenerator[bytes, None]:
    """Stream a ZIP of ``entries``, studies the caller has already authorised (nothing is
    decided here), fetched from each study's archive.

    ``on_study(entry, instances, bytes)`` is awaited before the study's first byte is
    yielded: record the study's event there (an exception from it stops the ZIP). When
    a study cannot be fetched, ``on_failure(entry, exc)`` is awaited and
    ``ArchiveUnavailable`` raised, so the ZIP ends without its central directory.
    ``manifest`` adds keys to ``manifest.json`` (for example ``not_exported``, ``by``).
    Memory stays flat whatever the study sizes: each study passes through a sealed spool
    on disk (see ``zipstream``). Raises ``ArchiveUnavailable`` or what ``on_study`` raises.
    """
    progress = progress or ExportProgress.start(gateway.clock.now(), len(entries))
    out, spool, exported = _Zip(), SealedSpool(), list[_Exported]()
    try:
        for entry in entries:
            instances = await _fetch(gateway, entry, spool, on_failure)
            size = sum(i.size for i in instances)
            if on_study is not None:
                await on_study(entry, len(instances), size)
            folder = f"{safe_component(entry.patient_id)}/{safe_component(entry.study_uid)}"
            async for chunk in _study_entries(out, spool, folder, instances, progress, gateway.clock.now()):
                if chunk:
                    yield chunk
            progress.studies_done += 1
            exported.append(_Exported(entry, folder, len(instances), size))
        yield _finish(out, progress, exported, manifest, gateway.clock.now())
        progress.finish(gateway.clock.now())
    except BaseException as exc:
        progress.finish(gateway.clock.now(), _reason(exc))
        out.discard()
        raise
    finally:
        spool.close()


async def _fetch(
    gateway: Gateway, entry: CatalogueEntry, spool: SealedSpool, on_failure: OnFailure | None
) -> list[SpooledInstance]:
    """Seal the whole study into the (emptied) spool; raises ``ArchiveUnavailable``."""
    spool.reset()
    archive = gateway.archive_for(entry)
    try:
        if archive is None:
            raise ArchiveUnavailable(f"no archive serves zone {entry.zone!r}")
        retrieved = await archive.retrieve_study(entry.study_uid, DICOM_ACCEPT)
        instances = await spool_study(retrieved, spool, archive.name)
        if not instances:
            raise ArchiveUnavailable(f"archive {archive.name!r} returned no instance")
    except Exception as exc:  # whatever stopped the study, it is recorded before anything else
        log.warning("export of study %s failed: %s", entry.study_uid, exc)
        if on_failure is not None:
            await on_failure(entry, exc)
        if isinstance(exc, ArchiveUnavailable):
            raise
        if isinstance(exc, ArchiveError | TimeoutError | OSError | httpx.HTTPError):
            raise ArchiveUnavailable(f"the archive of zone {entry.zone!r} could not deliver a study: {exc}") from exc
        raise
    spool.rewind()
    return instances


async def _study_entries(
    out: _Zip, spool: SealedSpool, folder: str, instances: list[SpooledInstance], progress: ExportProgress,
    when: datetime,
) -> AsyncIterator[bytes]:  # fmt: skip
    """The ZIP entries of one spooled study, a record at a time."""
    for n, instance in enumerate(instances, start=1):
        series = safe_component(instance.series_uid, "unknown-series")
        name = out.unique(f"{folder}/{series}/{safe_component(instance.sop_uid, f'instance-{n:05d}')}.dcm")
        out.writer = writer = out.file.open(entry_info(name, instance.size, when), "w")
        yield out.sink.drain()
        for _ in range(instance.records):
            data = spool.read()
            writer.write(data)
            progress.bytes_done += len(data)
            yield out.sink.drain()
        writer.close()
        out.writer = None
        progress.instances_done += 1
    yield out.sink.drain()


def _finish(
    out: _Zip, progress: ExportProgress, exported: list[_Exported], extra: Mapping[str, Any] | None, now: datetime
) -> bytes:
    """``manifest.json`` and the central directory."""
    studies = [
        {"study_uid": e.entry.study_uid, "patient_id": e.entry.patient_id, "zone": e.entry.zone, "folder": e.folder,
         "instances": e.instances, "bytes": e.bytes}
        for e in exported
    ]  # fmt: skip
    body = {
        "export_id": progress.id,
        "started_at": progress.started_at.isoformat(),
        "finished_at": now.isoformat(),
        "studies": studies,
        "not_exported": [],
        **(extra or {}),
    }
    data = json.dumps(body, indent=2, sort_keys=True).encode("utf-8")
    out.file.writestr(entry_info(out.unique(MANIFEST), len(data), now), data)
    out.file.close()
    return out.sink.drain()


def _reason(exc: BaseException) -> str:
    if isinstance(exc, ArchiveError):
        return "an archive could not deliver a study"
    if isinstance(exc, GeneratorExit | anyio.get_cancelled_exc_class()):
        return "the download was interrupted"
    return "the export stopped: " + type(exc).__name__


# --- the API ----------------------------------------------------------------------------------
class ExportRequest(BaseModel):
    """What to export: study instance UIDs and why. There is no break-glass for exports
    (emergency access covers query and read only)."""

    model_config = ConfigDict(extra="forbid")

    studies: list[Annotated[str, Field(max_length=1024)]] = Field(
        min_length=1, max_length=MAX_STUDIES, description="Study Instance UIDs"
    )
    purpose: Purpose = Purpose.TREATMENT


class ExportStatus(BaseModel):
    """The progress of an export, for the UI."""

    id: str
    state: Literal["running", "done", "failed"]
    studies_total: int
    studies_done: int
    instances_done: int
    bytes_done: int
    started_at: datetime
    finished_at: datetime | None
    error: str | None


class ExportRegistry:
    """The progress of the latest exports, in this process's memory only: it is lost on
    restart and not shared between workers (the audit log is the lasting record). Bounded:
    past ``capacity`` the oldest finished export is forgotten first."""

    def __init__(self, capacity: int = 256) -> None:
        self.capacity = capacity
        self._items: OrderedDict[str, ExportProgress] = OrderedDict()

    def add(self, progress: ExportProgress) -> None:
        while len(self._items) >= self.capacity:
            done = next((k for k, p in self._items.items() if p.state != "running"), None)
            self._items.pop(done if done is not None else next(iter(self._items)))
        self._items[progress.id] = progress

    def get(self, export_id: str, owner: str | None) -> ExportProgress:
        """The export ``export_id`` if ``owner`` started it; raises ``NotFound`` otherwise."""
        found = self._items.get(export_id)
        if found is None or found.owner is None or found.owner != owner:
            raise NotFound("not found")
        return found


@dataclass(frozen=True)
class _Permitted:
    entry: CatalogueEntry
    decision: Decision


def exports_router(gateway: Gateway, registry: ExportRegistry | None = None) -> APIRouter:
    """``POST /exports`` (a streamed ZIP) and ``GET /exports/{id}`` (its progress)."""
    router = APIRouter(tags=["exports"])
    exports = registry or ExportRegistry()

    @router.post(
        "/exports",
        summary="Export studies as a ZIP",
        response_class=ZipResponse,
        responses={200: {"content": {"application/zip": {}}, "description": "the ZIP, streamed"}},
    )
    async def create(body: ExportRequest, caller: Caller = Depends(api_caller(gateway))) -> ZipResponse:  # noqa: B008
        uids = await _checked_uids(gateway, caller, body)
        intent = Intent(body.purpose)
        permitted, refused = await _decide(gateway, caller, uids, intent)
        if not permitted:
            raise NotFound("not found")
        progress = ExportProgress.start(gateway.clock.now(), len(permitted), caller.subject.principal_id)
        exports.add(progress)
        stream = zip_studies(
            gateway, [p.entry for p in permitted], progress=progress,
            on_study=_study_event(gateway, caller, intent, progress, permitted),
            on_failure=_failure_event(gateway, caller, intent, progress),
            manifest={"by": caller.subject.principal_id, "purpose": intent.purpose.value, "not_exported": refused},
        )  # fmt: skip
        return await _response(stream, progress)

    @router.get("/exports/{export_id}", summary="How far an export got")
    async def status(export_id: str, caller: Caller = Depends(api_caller(gateway))) -> ExportStatus:  # noqa: B008
        p = exports.get(export_id, caller.subject.principal_id)
        return ExportStatus(
            id=p.id, state=p.state, studies_total=p.studies_total, studies_done=p.studies_done,
            instances_done=p.instances_done, bytes_done=p.bytes_done, started_at=p.started_at,
            finished_at=p.finished_at, error=p.error,
        )  # fmt: skip

    return router


async def _checked_uids(gateway: Gateway, caller: Caller, body: ExportRequest) -> list[str]:
    """The requested UIDs without repeats; a malformed one is audited and refused (400)."""
    uids = list(dict.fromkeys(u.strip() for u in body.studies))
    bad = [u for u in uids if not is_valid_uid(u)]
    if bad:
        await gateway.record(
            caller, "study.export", outcome=Outcome.FAILURE,
            detail={"action": "export", "refused": "BadRequest", "reason": f"invalid study UID {bad[0][:80]!r}"},
        )  # fmt: skip
        raise BadRequest(f"{bad[0][:80]!r} is not a valid study instance UID (digits and dots, at most 64)")
    return uids


async def _decide(
    gateway: Gateway, caller: Caller, uids: list[str], intent: Intent
) -> tuple[list[_Permitted], list[str]]:
    """One batched decision. Unknown and refused studies are audited alike and returned in
    request order. (Break-glass never covers exports: ``BREAK_GLASS_ACTIONS``.)"""
    entries = await gateway.entries(uids)
    known = [entries[u] for u in uids if u in entries]
    decisions = await gateway.decide(caller, Action.EXPORT, [resource_of(e) for e in known], intent)
    decided = dict(zip([e.study_uid for e in known], decisions, strict=True))
    permitted: list[_Permitted] = []
    refused: list[str] = []
    for uid in uids:
        entry, decision = entries.get(uid), decided.get(uid)
        if entry is not None and decision is not None and decision.permitted and gateway.archive_for(entry):
            permitted.append(_Permitted(entry, decision))
            continue
        reason = "unknown" if entry is None else "denied" if decision and not decision.permitted else "no-archive"
        await gateway.record(
            caller, "access.denied", outcome=Outcome.DENIED, objects=_objects(uid, entry), decision=decision,
            detail={"action": Action.EXPORT.value, "purpose": intent.purpose.value, "reason": reason},
        )  # fmt: skip
        refused.append(uid)
    return permitted, refused


def _study_event(
    gateway: Gateway, caller: Caller, intent: Intent, progress: ExportProgress, permitted: list[_Permitted]
) -> OnStudy:
    decided = {p.entry.study_uid: p for p in permitted}

    async def on_study(entry: CatalogueEntry, instances: int, size: int) -> None:
        p = decided[entry.study_uid]
        await gateway.record(
            caller, "study.export", objects=_objects(entry.study_uid, entry, instances, size), decision=p.decision,
            detail={"action": Action.EXPORT.value, "purpose": intent.purpose.value, "export": progress.id},
        )  # fmt: skip

    return on_study


def _failure_event(gateway: Gateway, caller: Caller, intent: Intent, progress: ExportProgress) -> OnFailure:
    async def on_failure(entry: CatalogueEntry, exc: BaseException) -> None:
        await gateway.record(
            caller, "study.export", outcome=Outcome.ERROR, objects=_objects(entry.study_uid, entry),
            detail={"action": Action.EXPORT.value, "purpose": intent.purpose.value, "export": progress.id,
                    "error": str(exc)[:500]},
        )  # fmt: skip

    return on_failure


async def _response(stream: AsyncGenerator[bytes, None], progress: ExportProgress) -> ZipResponse:
    filename = f"pacsguard-export-{progress.started_at:%Y%m%d-%H%M%S}-{progress.id[:8]}.zip"
    headers = {
        "Content-Disposition": f'attachment; filename="{filename}"',
        "X-Export-Id": progress.id,
        "Cache-Control": "no-store",
    }
    return await started_zip(stream, headers)


async def started_zip(stream: AsyncGenerator[bytes, None], headers: Mapping[str, str]) -> ZipResponse:
    """The ZIP response of ``stream`` (``zip_studies``), started before answering: an
    archive or audit failure on the first study raises here (the caller answers a clean
    502 or 503) instead of cutting off a download that has begun."""
    try:
        first = await anext(stream)
    except BaseException:
        await stream.aclose()
        raise
    return ZipResponse(_chain(first, stream), media_type="application/zip", headers=dict(headers))


class ZipResponse(StreamingResponse):
    """A streamed ZIP. When the archive or the audit log fails after the first byte, the
    response ends without its final chunk: the server drops the connection, and the client
    sees a failed download instead of a complete-looking, broken file."""

    async def stream_response(self, send: Send) -> None:
        await send({"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers})
        try:
            async for chunk in self.body_iterator:
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
        except (ArchiveError, AuditError) as exc:
            log.warning("export cut short after its first byte: %s", exc)
            return
        await send({"type": "http.response.body", "body": b"", "more_body": False})


async def _chain(first: bytes, rest: AsyncGenerator[bytes, None]) -> AsyncIterator[bytes]:
    try:
        yield first
        async for chunk in rest:
            yield chunk
    finally:
        await rest.aclose()


def _objects(uid: str, entry: CatalogueEntry | None, count: int | None = None, size: int | None = None) -> ObjectRef:
    return ObjectRef(
        patient_id=(entry.patient_id or None) if entry else None,
        study_uid=uid,
        zone=entry.zone if entry else None,
        count=count,
        bytes=size,
    )
