"""The pieces of a streamed ZIP export: a multipart/related splitter that works on a
stream, a sealed spool for one study, and a ZIP writer that hands out its bytes as it goes.

Why a spool: a study's ``study.export`` event names its instance count and bytes and must
be durable before the first of those bytes leaves (fail closed). Neither number is known
before the archive has sent the whole study, and holding a study in memory would make
memory grow with its size. So each study is first written to an unlinked temporary file,
sealed with AES-256-GCM under a key that lives only in this process (PHI never rests on
disk in clear, and is unreadable once the export ends), then copied into the ZIP.
Memory stays at a few MiB whatever the study size; disk use is one study at a time.
Spool reads and writes run on the event loop: each is at most 1 MiB through the page
cache, and a hop to a worker thread per record cost more than it saved when measured.

The ZIP itself is written by the standard library's ``zipfile`` onto a sink that cannot
seek: every entry gets a data descriptor, and ZIP64 records appear when an entry or the
archive passes 4 GiB. Entries are stored (no compression): DICOM pixel data rarely
shrinks, and storing keeps the CPU free for the transfer.
"""

from __future__ import annotations

import io
import re
import tempfile
import warnings
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import IO

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from pydicom import dcmread

from pacsguard.archives import Retrieved
from pacsguard.archives.parts import part_headers, related_boundary
from pacsguard.errors import ArchiveUnavailable

__all__ = [
    "PartSplitter",
    "Piece",
    "SealedSpool",
    "SpooledInstance",
    "ZipSink",
    "entry_info",
    "open_zip",
    "safe_component",
    "spool_study",
    "spooled_chunks",
]

RECORD = 1 << 20  # plaintext bytes per sealed record
HEADER_PREFIX = 256 << 10  # bytes of each instance kept in memory to read its UIDs
_MAX_PART_HEADERS = 16 << 10
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def safe_component(text: str, fallback: str = "unknown") -> str:
    """``text`` as one harmless path component: letters, digits, ``._-`` only, no
    leading dot (so never ``..``), at most 64 characters; ``fallback`` when empty."""
    cleaned = _UNSAFE.sub("_", text.strip()).lstrip(".")[:64]
    return cleaned if cleaned.strip("_") else fallback


# --- multipart/related, split as it streams --------------------------------------------------
Piece = dict[str, str] | bytes | None


class PartSplitter:
    """Incremental splitter of a multipart/related body (RFC 2046 §5.1, RFC 2387).

    ``feed(chunk)`` returns what the chunk completes, in order: a ``dict`` of lower-cased
    headers when a part starts, ``bytes`` of its payload, ``None`` when it ends. Raises
    ``ValueError`` on a malformed body; ``close()`` raises when the final boundary is missing.
    Payload bytes are cut from the chunks as they come: only a possible partial boundary
    (or a part's header block) is carried over to the next chunk.
    """

    def __init__(self, content_type: str) -> None:
        boundary = related_boundary(content_type).encode("latin-1")
        self._first = b"--" + boundary
        self._delimiter = b"\r\n--" + boundary
        self._rest = b""
        self._state = "preamble"

    def feed(self, chunk: bytes) -> list[Piece]:
        data = self._rest + chunk if self._rest else bytes(chunk)
        out: list[Piece] = []
        pos = 0
        while True:
            moved = self._step(data, pos, out)
            if moved is None:
                break
            pos = moved
        self._rest = data[pos:]
        return out

    def close(self) -> None:
        if self._state != "done":
            raise ValueError("the multipart body ends before its final boundary")

    def _step(self, data: bytes, pos: int, out: list[Piece]) -> int | None:
        """Consume what it can from ``data[pos:]``; the new position, or ``None`` to wait."""
        if self._state == "body":
            return self._body(data, pos, out)
        if self._state == "headers":
            return self._header_block(data, pos, out)
        if self._state == "after":
            return self._after_delimiter(data, pos)
        if self._state == "preamble":
            return self._preamble(data, pos)
        if data[pos:].strip():
            raise ValueError("data after the final multipart boundary")
        return None if pos == len(data) else len(data)

    def _header_block(self, data: bytes, pos: int, out: list[Piece]) -> int | None:
        if len(data) - pos < 2:
            return None
        if data.startswith(b"\r\n", pos):  # a part without headers
            out.append({})
            self._state = "body"
            return pos + 2
        end = data.find(b"\r\n\r\n", pos)
        if end < 0:
            if len(data) - pos > _MAX_PART_HEADERS:
                raise ValueError("a multipart part has an overlong header block")
            return None
        out.append(part_headers(data[pos:end]))
        self._state = "body"
        return end + 4

    def _preamble(self, data: bytes, pos: int) -> int | None:
        if data.startswith(self._first, pos):
            self._state = "after"
            return pos + len(self._first)
        if len(data) - pos < len(self._first):
            return None
        at = data.find(self._delimiter, pos)
        if at < 0:
            if len(data) - pos > _MAX_PART_HEADERS:
                raise ValueError("the multipart body has no boundary line")
            return None
        self._state = "after"
        return at + len(self._delimiter)

    def _after_delimiter(self, data: bytes, pos: int) -> int | None:
        if data.startswith(b"--", pos):
            self._state = "done"
            return pos + 2
        at = pos
        while at < len(data) and data[at] in b" \t":  # transport padding (RFC 2046 §5.1.1)
            at += 1
        if len(data) - at < 2:
            return None
        if not data.startswith(b"\r\n", at):
            raise ValueError("malformed boundary line in the multipart body")
        self._state = "headers"
        return at + 2

    def _body(self, data: bytes, pos: int, out: list[Piece]) -> int | None:
        at = data.find(self._delimiter, pos)
        if at >= 0:
            if at > pos:
                out.append(data[pos:at])
            out.append(None)
            self._state = "after"
            return at + len(self._delimiter)
        safe = len(data) - (len(self._delimiter) - 1)  # a delimiter may straddle two chunks
        if safe > pos:
            out.append(data[pos:safe])
            return safe
        return None


class SealedSpool:
    """A write-then-read-once store of records on an unlinked temporary file, each sealed
    with AES-256-GCM under a key made for this spool alone. Records are read back in the
    order they were written (``rewind`` then ``read``). Not thread-safe; close it."""

    def __init__(self, directory: str | None = None) -> None:
        self._file: IO[bytes] = tempfile.TemporaryFile(dir=directory)  # noqa: SIM115 - closed by close()
        self._aead = AESGCM(AESGCM.generate_key(bit_length=256))
        self._written = 0
        self._read = 0

    def write(self, data: bytes) -> None:
        """Seal one record (at most ``RECORD`` bytes of plaintext is best) and append it."""
        sealed = self._aead.encrypt(_nonce(self._written), data, None)
        self._file.write(len(sealed).to_bytes(4, "big") + sealed)
        self._written += 1

    def rewind(self) -> None:
        """Start reading from the first record; writing after this is not allowed."""
        self._file.flush()
        self._file.seek(0)
        self._read = 0

    def read(self) -> bytes:
        """The next record's plaintext; raises ``EOFError`` past the last record."""
        if self._read >= self._written:
            raise EOFError("no more records in the spool")
        size = int.from_bytes(self._file.read(4), "big")
        data = self._aead.decrypt(_nonce(self._read), self._file.read(size), None)
        self._read += 1
        return data

    def reset(self) -> None:
        """Forget every record (the next study starts from an empty file)."""
        self._file.seek(0)
        self._file.truncate()
        self._written = self._read = 0

    def close(self) -> None:
        self._file.close()


def _nonce(counter: int) -> bytes:
    return counter.to_bytes(12, "big")  # one key per spool: a counter never repeats


@dataclass
class SpooledInstance:
    """One instance in the spool: its UIDs (from its header), size and record count."""

    series_uid: str
    sop_uid: str
    size: int = 0
    records: int = 0


@dataclass
class _Writer:
    spool: SealedSpool
    instances: list[SpooledInstance] = field(default_factory=list)
    pending: bytearray = field(default_factory=bytearray)
    prefix: bytearray = field(default_factory=bytearray)
    size: int = 0
    records: int = 0

    def add(self, data: bytes) -> None:
        if len(self.prefix) < HEADER_PREFIX:
            self.prefix += data[: HEADER_PREFIX - len(self.prefix)]
        self.pending += data
        self.size += len(data)
        while len(self.pending) >= RECORD:
            self.spool.write(bytes(self.pending[:RECORD]))
            del self.pending[:RECORD]
            self.records += 1

    def end(self) -> None:
        if self.pending:
            self.spool.write(bytes(self.pending))
            self.records += 1
        series, sop = _uids(bytes(self.prefix))
        self.instances.append(SpooledInstance(series, sop, self.size, self.records))
        self.pending, self.prefix, self.size, self.records = bytearray(), bytearray(), 0, 0


def _uids(prefix: bytes) -> tuple[str, str]:
    """Series and SOP instance UID from the first bytes of a Part-10 file ("" if unreadable)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ds = dcmread(io.BytesIO(prefix), stop_before_pixels=True,
                         specific_tags=["SeriesInstanceUID", "SOPInstanceUID"])  # fmt: skip
        return str(ds.get("SeriesInstanceUID", "") or ""), str(ds.get("SOPInstanceUID", "") or "")
    except Exception:  # pydicom raises many types for a cut-off header; the name falls back
        return "", ""


async def spool_study(retrieved: Retrieved, spool: SealedSpool, archive: str) -> list[SpooledInstance]:
    """Split a WADO-RS study answer into its instances and seal them into ``spool``.

    Raises ``ArchiveUnavailable`` when the body is not well-formed multipart/related; the
    archive's own errors pass through. ``retrieved`` is closed in every case.
    """
    writer = _Writer(spool)
    try:
        splitter = PartSplitter(retrieved.content_type)
        async for chunk in retrieved:
            for piece in splitter.feed(chunk):
                if isinstance(piece, bytes):
                    writer.add(piece)
                elif piece is None:
                    writer.end()
        splitter.close()
    except ValueError as exc:
        raise ArchiveUnavailable(f"archive {archive!r} answered an unusable study: {exc}") from None
    finally:
        await retrieved.aclose()
    return writer.instances


def spooled_chunks(spool: SealedSpool, instance: SpooledInstance) -> Iterator[bytes]:
    """The plaintext records of the next instance in ``spool`` (read in spool order)."""
    for _ in range(instance.records):
        yield spool.read()


# --- the ZIP sink ----------------------------------------------------------------------------
class ZipSink:
    """A write-only, non-seekable file for ``zipfile.ZipFile``; ``drain()`` takes what has
    been written since the last drain."""

    def __init__(self) -> None:
        self._parts: list[bytes] = []
        self._position = 0

    def write(self, data: bytes) -> int:
        self._parts.append(bytes(data))
        self._position += len(data)
        return len(data)

    def tell(self) -> int:
        return self._position

    def flush(self) -> None:
        """Nothing to flush: ``drain`` hands the bytes on."""

    def close(self) -> None:
        """Nothing to close (``zipfile`` leaves a file it was given open anyway)."""

    def drain(self) -> bytes:
        out = b"".join(self._parts)
        self._parts.clear()
        return out


def open_zip(sink: ZipSink) -> zipfile.ZipFile:
    """A ZIP writer onto ``sink``: stored entries, ZIP64 when needed."""
    return zipfile.ZipFile(sink, "w", compression=zipfile.ZIP_STORED, allowZip64=True)


def entry_info(name: str, size: int, when: datetime) -> zipfile.ZipInfo:
    """A stored entry of ``size`` bytes, dated ``when`` (clamped to what ZIP can say)."""
    info = zipfile.ZipInfo(name, date_time=_zip_time(when))
    info.compress_type = zipfile.ZIP_STORED
    info.file_size = size
    info.external_attr = 0o640 << 16
    return info


def _zip_time(when: datetime) -> tuple[int, int, int, int, int, int]:
    if when.year < 1980:
        return (1980, 1, 1, 0, 0, 0)
    return (when.year, when.month, when.day, when.hour, when.minute, when.second)
