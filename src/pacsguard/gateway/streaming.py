"""Moving archive answers to the client: WADO-RS bodies streamed chunk by chunk (the
multipart/related body passes through unparsed, so memory stays flat whatever the study
size), archive URLs rewritten to the gateway's, and frames and bulk data cut from one
instance.
"""

from __future__ import annotations

import io
import secrets
import warnings
from collections.abc import AsyncIterator, Iterable
from typing import Any

from pydicom import dcmread
from pydicom.encaps import generate_frames
from starlette.responses import StreamingResponse

from pacsguard.archives import DicomJson, Retrieved
from pacsguard.archives.parts import join_related, split_related
from pacsguard.errors import ArchiveNotFound, BadRequest, RequestTooLarge

__all__ = ["bulk_of", "frames_of", "read_instance", "related_response", "rewrite_urls", "stream"]

RETRIEVE_URL = "00081190"
WRITE_SIZE = 256 << 10


def stream(retrieved: Retrieved, headers: dict[str, str] | None = None) -> StreamingResponse:
    """Pass a retrieved body through as it arrives; the upstream is closed at the end,
    also when the client goes away."""
    out = {**(headers or {})}
    if retrieved.content_length is not None:
        out["Content-Length"] = str(retrieved.content_length)
    return StreamingResponse(_chunks(retrieved), media_type=retrieved.content_type, headers=out)


async def _chunks(retrieved: Retrieved) -> AsyncIterator[bytes]:
    # Large pieces (the DICOMweb adapter reads 1 MiB at once) pass on as they are; small
    # ones (a general HTTP client's 64 KiB reads) are gathered into writes of at least
    # ``WRITE_SIZE``, which halves the server's per-write work on the way out.
    pending: list[bytes] = []
    size = 0
    try:
        async for chunk in retrieved:
            if not pending and len(chunk) >= WRITE_SIZE:
                yield chunk
                continue
            pending.append(chunk)
            size += len(chunk)
            if size >= WRITE_SIZE:
                yield b"".join(pending)
                pending, size = [], 0
        if pending:
            yield b"".join(pending)
    finally:
        await retrieved.aclose()


async def read_instance(retrieved: Retrieved, cap: int) -> bytes:
    """The Part-10 bytes of a one-instance WADO-RS answer, at most ``cap`` bytes.

    Raises ``RequestTooLarge`` (over the cap) or ``ArchiveNotFound`` (no part).
    """
    chunks: list[bytes] = []
    size = 0
    async with retrieved:
        async for chunk in retrieved:
            size += len(chunk)
            if size > cap:
                raise RequestTooLarge(cap)
            chunks.append(chunk)
    parts = split_related(b"".join(chunks), retrieved.content_type)
    if not parts:
        raise ArchiveNotFound("the archive answered no instance")
    return parts[0][1]


def frames_of(data: bytes, numbers: Iterable[int]) -> list[bytes]:
    """Frames (1-based) of an instance's pixel data, native or encapsulated.

    Raises ``ArchiveNotFound`` for a frame the instance does not have.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds = dcmread(io.BytesIO(data))
    if "PixelData" not in ds:
        raise ArchiveNotFound("the instance has no pixel data")
    count = int(ds.get("NumberOfFrames", 1) or 1)
    if ds.file_meta.TransferSyntaxUID.is_compressed:
        frames = list(generate_frames(ds.PixelData, number_of_frames=count))
    else:
        size = int(ds.Rows) * int(ds.Columns) * int(ds.get("SamplesPerPixel", 1)) * int(ds.BitsAllocated) // 8
        pixels: bytes = ds.PixelData
        frames = [pixels[i * size : (i + 1) * size] for i in range(count)]
    out = []
    for number in numbers:
        if not 1 <= number <= len(frames):
            raise ArchiveNotFound(f"the instance has no frame {number}")
        out.append(frames[number - 1])
    return out


def bulk_of(data: bytes, tag: int) -> bytes:
    """The value of one top-level element (bulk data such as pixel data), as bytes.

    Raises ``ArchiveNotFound`` when the instance lacks it.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds = dcmread(io.BytesIO(data))
    if tag not in ds:
        raise ArchiveNotFound(f"the instance has no element {tag:08X}")
    value: Any = ds[tag].value
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode("utf-8")
    raise BadRequest(f"element {tag:08X} is not bulk data")


def related_response(payloads: list[bytes]) -> StreamingResponse:
    """A multipart/related answer of octet-stream parts (frames, bulk data)."""
    boundary = secrets.token_hex(16)
    body = join_related(payloads, boundary, "application/octet-stream")
    media = f'multipart/related; type="application/octet-stream"; boundary={boundary}'

    async def once() -> AsyncIterator[bytes]:
        yield body

    return StreamingResponse(once(), media_type=media, headers={"Content-Length": str(len(body))})


def rewrite_urls(items: list[DicomJson], base: str) -> list[DicomJson]:
    """Point every RetrieveURL and BulkDataURI at ``base`` (the gateway's DICOMweb root),
    whatever archive wrote it; a URL that names no study is dropped."""
    for item in items:
        _walk(item, base)
    return items


def _walk(dataset: DicomJson, base: str) -> None:
    for tag, element in list(dataset.items()):
        if not isinstance(element, dict):
            continue
        if tag == RETRIEVE_URL and isinstance(element.get("Value"), list):
            element["Value"] = [_rebase(str(v), base) for v in element["Value"]]
        if "BulkDataURI" in element:
            element["BulkDataURI"] = _rebase(str(element["BulkDataURI"]), base)
        if element.get("vr") == "SQ":
            for sub in element.get("Value") or []:
                if isinstance(sub, dict):
                    _walk(sub, base)


def _rebase(url: str, base: str) -> str:
    at = url.find("/studies/")
    return base + url[at:] if at >= 0 else ""
