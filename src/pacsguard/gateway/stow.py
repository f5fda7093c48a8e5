"""STOW-RS through the gateway (PS3.18 §10.5): all or nothing at the gateway's edge.

The body is read up to the site's cap, split, and every part checked (``application/dicom``,
a whole and readable Part-10 file) before anything is sent on: a request with one bad
part stores nothing and gets a 400. The caller needs the ``store`` right on the target
zone (``?zone=``, default the caller's own zone) for every study in the request. Stored
studies are catalogued to that zone, one ``study.store`` event each.
"""

from __future__ import annotations

import asyncio

import anyio.to_thread
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from pacsguard.archives import CatalogueEntry, DicomWebArchive, InstanceInfo, StoreResult
from pacsguard.archives.parts import PartRefused, inspect_part, related_boundary, split_related
from pacsguard.domain import Action, ObjectRef, Outcome, Resource
from pacsguard.errors import AuditUnavailable, BadRequest, RequestTooLarge
from pacsguard.gateway.auth import Caller
from pacsguard.gateway.core import Gateway, Intent
from pacsguard.gateway.errors import problem

__all__ = ["read_body", "store"]

DICOM_JSON = "application/dicom+json"
_SOP_CLASS, _SOP_UID, _URL, _REASON = "00081150", "00081155", "00081190", "00081197"
_REFERENCED, _FAILED = "00081199", "00081198"


async def read_body(request: Request, cap: int) -> bytes:
    """The whole request body, refused with ``RequestTooLarge`` as soon as it passes ``cap``."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > cap:
        raise RequestTooLarge(cap)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > cap:
            raise RequestTooLarge(cap)
        chunks.append(chunk)
    return b"".join(chunks)


def checked_parts(body: bytes, content_type: str) -> tuple[list[bytes], list[InstanceInfo]]:
    """Split a multipart/related body and check every part; raises ``BadRequest`` naming
    the first bad part."""
    if not content_type.lower().startswith("multipart/related"):
        raise BadRequest('STOW-RS needs Content-Type: multipart/related; type="application/dicom"')
    try:
        parts = split_related(_without_preamble(body, related_boundary(content_type)), content_type)
    except ValueError as exc:
        raise BadRequest(f"malformed multipart body: {exc}") from None
    if not parts:
        raise BadRequest("the multipart body holds no part")
    payloads, infos = [], []
    for index, (headers, payload) in enumerate(parts, start=1):
        kind = headers.get("content-type", "").split(";")[0].strip().lower()
        if kind != "application/dicom":
            raise BadRequest(f"part {index} is {kind or 'untyped'!r}, not application/dicom; nothing was stored")
        try:
            infos.append(inspect_part(payload))
        except PartRefused as exc:
            raise BadRequest(f"part {index}: {exc.reason}; nothing was stored") from None
        payloads.append(payload)
    return payloads, infos


async def store(
    gw: Gateway, request: Request, caller: Caller, study: str | None, intent: Intent, base: str
) -> Response:
    """Serve one STOW-RS request; raises ``BadRequest``, ``RequestTooLarge``,
    ``AuditUnavailable`` or ``ArchiveUnavailable`` (mapped in ``errors``)."""
    zone = request.query_params.get("zone") or caller.subject.zone
    if zone not in gw.directory.zones:
        raise BadRequest(f"zone {zone[:64]!r} is not a zone of this site")
    archive = gw.zone_archive(zone)
    if archive is None:
        raise BadRequest(f"zone {zone!r} has no archive to store into")
    body = await read_body(request, gw.options.max_body_bytes)
    payloads, infos = await anyio.to_thread.run_sync(checked_parts, body, request.headers.get("content-type", ""))
    if study is not None and any(i.study_uid != study for i in infos):
        raise BadRequest("every instance must belong to the study named in the path")
    if gw.audit.health.state != "healthy":
        raise AuditUnavailable("the audit log is failing; nothing is stored until it recovers")
    studies = _by_study(infos)
    known = await gw.entries(studies)
    resources = [_resource(zone, uid, items, known.get(uid)) for uid, items in studies.items()]
    decisions = await gw.decide(caller, Action.STORE, resources, intent)
    denied = [r.study_uid for r, d in zip(resources, decisions, strict=True) if not d.permitted]
    if denied:
        first = decisions[[r.study_uid for r in resources].index(denied[0])]
        await gw.record(
            caller, "access.denied", outcome=Outcome.DENIED,
            objects=ObjectRef(study_uid=denied[0], zone=zone, count=len(infos)), decision=first,
            detail={"action": "store", "purpose": intent.purpose.value, "studies": denied},
        )  # fmt: skip
        return problem(403, f"you may not store studies in zone {zone!r}")
    if isinstance(archive, DicomWebArchive):  # the parts were inspected above: not again
        result = await archive.store(payloads, checked=infos)
    else:
        result = await archive.store(payloads)
    if result.stored:
        await anyio.to_thread.run_sync(gw.catalogue.record_stored, zone, archive.name, list(result.stored))
    # One event per stored study, appended together so that they share one durable commit
    # (a STOW of 50 one-instance studies waited for 50 commits one after the other).
    await asyncio.gather(*(
        gw.record(
            caller, "study.store", objects=ObjectRef(
                patient_id=resource.patient_id, study_uid=resource.study_uid, zone=zone,
                count=len(stored), bytes=sum(i.size for i in stored)),
            decision=decision, detail={"action": "store", "purpose": intent.purpose.value, "archive": archive.name},
        )
        for resource, decision in zip(resources, decisions, strict=True)
        if (stored := [i for i in result.stored if i.study_uid == resource.study_uid])
    ))  # fmt: skip
    if result.failed:
        await gw.record(
            caller, "study.store", outcome=Outcome.FAILURE, objects=ObjectRef(zone=zone, count=len(result.failed)),
            detail={"action": "store", "failed": [f.reason for f in result.failed][:20], "archive": archive.name},
        )  # fmt: skip
    status = 200 if result.ok else 202 if result.stored else 409
    return JSONResponse(_answer(result, base), status_code=status, media_type=DICOM_JSON)


def _without_preamble(body: bytes, boundary: str) -> bytes:
    """The body from its first delimiter line: RFC 2046 §5.1.1 allows a preamble (clients
    such as dicomweb-client start with a CRLF), which ``split_related`` does not skip."""
    start = body.find(b"--" + boundary.encode("latin-1"))
    return body[start:] if start > 0 else body


def _by_study(infos: list[InstanceInfo]) -> dict[str, list[InstanceInfo]]:
    out: dict[str, list[InstanceInfo]] = {}
    for info in infos:
        out.setdefault(info.study_uid, []).append(info)
    return out


def _resource(zone: str, uid: str, items: list[InstanceInfo], entry: CatalogueEntry | None) -> Resource:
    modality = ",".join(dict.fromkeys(i.modality for i in items if i.modality)) or None
    if entry is not None:
        return Resource(zone, uid, entry.patient_id or None, entry.sensitivity, entry.modality or modality)
    return Resource(zone, uid, items[0].patient_id or None, modality=modality)


def _answer(result: StoreResult, base: str) -> dict[str, object]:
    """The Store Instances Response (PS3.18 §10.5.3) as DICOM JSON."""
    referenced = [
        {
            _SOP_CLASS: {"vr": "UI", "Value": [i.sop_class_uid]},
            _SOP_UID: {"vr": "UI", "Value": [i.sop_instance_uid]},
            _URL: {
                "vr": "UR",
                "Value": [f"{base}/studies/{i.study_uid}/series/{i.series_uid}/instances/{i.sop_instance_uid}"],
            },
        }
        for i in result.stored
    ]
    failed = [
        {_SOP_UID: {"vr": "UI", "Value": [f.sop_instance_uid or ""]}, _REASON: {"vr": "US", "Value": [0xC000]}}
        for f in result.failed
    ]
    answer: dict[str, object] = {}
    if referenced:
        answer[_REFERENCED] = {"vr": "SQ", "Value": referenced}
    if failed:
        answer[_FAILED] = {"vr": "SQ", "Value": failed}
    return answer
