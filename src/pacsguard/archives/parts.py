"""Reading DICOM parts: checking one Part-10 file before it is stored, and splitting or
building multipart/related bodies (PS3.18 §8.6, RFC 2387).

The multipart code is a few lines of boundary handling on bytes: the standard library's
``email`` parser decodes headers and copies each part through string handling, and the
PyPI multipart parsers target form-data; neither fits a binary related body.
"""

from __future__ import annotations

import io
import re
import warnings
from datetime import date
from typing import Any

from pydicom import dcmread
from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError

from pacsguard.archives.base import InstanceInfo, StoreFailure, StoreResult
from pacsguard.archives.query import is_valid_uid

UNDEFINED = 0xFFFFFFFF

__all__ = [
    "PartRefused",
    "inspect_part",
    "join_related",
    "part_headers",
    "related_boundary",
    "related_pieces",
    "split_related",
]


class PartRefused(Exception):
    """One part is not a storable DICOM instance; ``reason`` says why (for StoreFailure)."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


def inspect_part(data: bytes) -> InstanceInfo:
    """Read a whole Part-10 file and return its identifiers; raises ``PartRefused``."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ds = dcmread(io.BytesIO(data), force=False)
            _check_lengths(ds)
            elements = list(ds)  # converts every element: a malformed value fails here
    except PartRefused:
        raise
    except InvalidDicomError:
        raise PartRefused("not a DICOM Part-10 file (no DICM preamble)") from None
    except Exception as exc:  # pydicom raises many types for broken input
        raise PartRefused(f"corrupt DICOM file: {type(exc).__name__}: {exc}") from None
    if not elements:
        raise PartRefused("empty DICOM data set")
    uids = {}
    for keyword in ("SOPInstanceUID", "SOPClassUID", "SeriesInstanceUID", "StudyInstanceUID"):
        value = str(ds.get(keyword, "") or "")
        if not is_valid_uid(value):
            raise PartRefused(f"missing or invalid {keyword}: {value!r}")
        uids[keyword] = value
    if ds.file_meta.get("MediaStorageSOPInstanceUID", uids["SOPInstanceUID"]) != uids["SOPInstanceUID"]:
        raise PartRefused("MediaStorageSOPInstanceUID differs from SOPInstanceUID")
    return InstanceInfo(
        sop_instance_uid=uids["SOPInstanceUID"],
        sop_class_uid=uids["SOPClassUID"],
        series_uid=uids["SeriesInstanceUID"],
        study_uid=uids["StudyInstanceUID"],
        patient_id=str(ds.get("PatientID", "") or ""),
        patient_name=str(ds.get("PatientName", "") or ""),
        study_date=_date(str(ds.get("StudyDate", "") or "")),
        modality=str(ds.get("Modality", "") or ""),
        accession_number=str(ds.get("AccessionNumber", "") or ""),
        study_description=str(ds.get("StudyDescription", "") or ""),
        transfer_syntax=str(ds.file_meta.get("TransferSyntaxUID", "")),
        size=len(data),
    )


def _check_lengths(ds: Dataset) -> None:
    """pydicom accepts a file cut short; refuse a value shorter than its declared length,
    and an image whose native pixel data is missing or of the wrong size."""
    for tag in ds.keys():  # noqa: SIM118 - get_item needs the raw, unconverted element
        raw: Any = ds.get_item(tag)
        short = isinstance(raw, RawDataElement) and raw.value is not None and len(raw.value) != raw.length
        if short and raw.length != UNDEFINED:
            raise PartRefused(f"truncated DICOM file: element {tag} is cut short")
    if "Rows" not in ds or ds.file_meta.TransferSyntaxUID.is_compressed:
        return
    if "PixelData" not in ds:
        raise PartRefused("truncated DICOM file: an image without pixel data")
    frames = int(ds.get("NumberOfFrames", 1) or 1)
    bits = int(ds.BitsAllocated)
    count = int(ds.Rows) * int(ds.Columns) * int(ds.get("SamplesPerPixel", 1)) * frames
    expected = (count * bits + 7) // 8
    pixels: Any = ds.get_item("PixelData")
    actual = pixels.length if isinstance(pixels, RawDataElement) else len(ds.PixelData)
    if actual not in (expected, expected + 1):
        raise PartRefused(f"pixel data holds {actual} bytes where the image needs {expected}")


def _date(text: str) -> date | None:
    try:
        return date(int(text[:4]), int(text[4:6]), int(text[6:8])) if len(text) == 8 else None
    except ValueError:
        return None


def related_boundary(content_type: str) -> str:
    """The boundary parameter of a multipart/related content type; raises ``ValueError``."""
    if not content_type.lower().startswith("multipart/related"):
        raise ValueError(f"not multipart/related: {content_type!r}")
    match = re.search(r'boundary="?([^";]+)"?', content_type, flags=re.IGNORECASE)
    if not match:
        raise ValueError("multipart/related without a boundary")
    return match.group(1)


def split_related(body: bytes, content_type: str) -> list[tuple[dict[str, str], bytes]]:
    """The parts of a multipart/related body: (lower-cased headers, payload) each.

    Raises ``ValueError`` when the body is not well-formed.
    """
    delimiter = b"--" + related_boundary(content_type).encode("latin-1")
    if body.find(delimiter) < 0:
        raise ValueError("multipart body has no boundary line")
    chunks = body.split(b"\r\n" + delimiter)
    if chunks[0].startswith(delimiter):
        chunks[0] = chunks[0][len(delimiter) :]
    else:
        # A preamble (RFC 2046 §5.1.1), even an empty one: the body began with CRLF or text.
        # A boundary inside it that is not at a line start would hide a part: refuse.
        if delimiter in chunks[0]:
            raise ValueError("malformed boundary line in multipart body")
        chunks.pop(0)
        if not chunks:
            raise ValueError("multipart body has no boundary line")
    if not chunks[-1].startswith(b"--"):
        raise ValueError("multipart body is not closed by its final boundary")
    return [_part(chunk) for chunk in chunks[:-1]]


def _part(chunk: bytes) -> tuple[dict[str, str], bytes]:
    if not chunk.startswith(b"\r\n"):
        raise ValueError("malformed boundary line in multipart body")
    head, sep, payload = chunk[2:].partition(b"\r\n\r\n")
    if not sep:
        raise ValueError("multipart part without a header block")
    return part_headers(head), payload


def part_headers(block: bytes) -> dict[str, str]:
    """The header block of one multipart part (lower-cased names); ``ValueError`` if a
    line is not ``name: value``."""
    headers: dict[str, str] = {}
    for line in block.decode("latin-1").split("\r\n"):
        name, colon, value = line.partition(":")
        if line and not colon:
            raise ValueError(f"malformed part header: {line[:60]!r}")
        if line:
            headers[name.strip().lower()] = value.strip()
    return headers


def related_pieces(parts: list[bytes], boundary: str, part_type: str = "application/dicom") -> list[bytes]:
    """The pieces of a multipart/related body, in order, without copying the payloads."""
    pieces: list[bytes] = []
    for payload in parts:
        pieces += [f"--{boundary}\r\nContent-Type: {part_type}\r\nContent-Length: {len(payload)}\r\n\r\n".encode()]
        pieces += [payload, b"\r\n"]
    pieces.append(f"--{boundary}--\r\n".encode())
    return pieces


def join_related(parts: list[bytes], boundary: str, part_type: str = "application/dicom") -> bytes:
    """A multipart/related body of ``parts``, each with ``Content-Type: part_type``."""
    return b"".join(related_pieces(parts, boundary, part_type))


def check_parts(parts: list[bytes]) -> tuple[list[tuple[int, InstanceInfo]], StoreResult | None]:
    """Inspect every part of a store request: ``(index, info)`` of each, and a refusal of
    the whole request (``StoreResult`` with every part failed) when any part is bad, so
    that nothing of a request with a broken part is ever stored."""
    checked: list[tuple[int, InstanceInfo]] = []
    refused: list[StoreFailure] = []
    for index, data in enumerate(parts):
        try:
            checked.append((index, inspect_part(data)))
        except PartRefused as exc:
            refused.append(StoreFailure(index, exc.reason))
    if not refused:
        return checked, None
    others = "not stored: another part of the request was refused"
    refused += [StoreFailure(i, others, info.sop_instance_uid) for i, info in checked]
    return checked, StoreResult((), tuple(sorted(refused, key=lambda f: f.index)))
