"""The ``Archive`` protocol and the values that cross it.

An archive is anything that stores DICOM instances and answers QIDO-RS, WADO-RS and
STOW-RS (DICOM PS3.18): an upstream DICOMweb server (``DicomWebArchive``) or the
embedded store (``EmbeddedArchive``). Search results are DICOM JSON (PS3.18 §F.2);
retrieval is a stream, so the gateway can pass multipart/related through with flat
memory whatever the study size.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import date
from types import TracebackType
from typing import Any, Protocol, runtime_checkable

from pacsguard.archives.query import QidoQuery

__all__ = [
    "DICOM_ACCEPT",
    "Archive",
    "DicomJson",
    "InstanceInfo",
    "Retrieved",
    "StoreFailure",
    "StoreResult",
]

DicomJson = dict[str, Any]

# What the gateway asks for by default: every instance as stored, no transcoding.
DICOM_ACCEPT = 'multipart/related; type="application/dicom"; transfer-syntax=*'


@dataclass(frozen=True, slots=True)
class InstanceInfo:
    """What a stored instance is, read from its header (for the catalogue and events)."""

    sop_instance_uid: str
    sop_class_uid: str
    series_uid: str
    study_uid: str
    patient_id: str
    patient_name: str
    study_date: date | None
    modality: str
    accession_number: str
    study_description: str
    transfer_syntax: str
    size: int


@dataclass(frozen=True, slots=True)
class StoreFailure:
    """A part that was not stored: its position in the request, why, and its UID if known."""

    index: int
    reason: str
    sop_instance_uid: str | None = None


@dataclass(frozen=True, slots=True)
class StoreResult:
    """Per-instance outcome of ``Archive.store``; every part is in exactly one list."""

    stored: tuple[InstanceInfo, ...]
    failed: tuple[StoreFailure, ...]

    @property
    def ok(self) -> bool:
        return not self.failed

    def study_uids(self) -> list[str]:
        return list(dict.fromkeys(i.study_uid for i in self.stored))


class Retrieved:
    """A streamed WADO-RS response: iterate it for byte chunks; always close it.

    ``content_type`` is the upstream header (multipart/related with its boundary), to be
    passed on unchanged together with the bytes.
    """

    def __init__(
        self,
        content_type: str,
        chunks: AsyncIterator[bytes],
        close: Callable[[], Awaitable[None]],
        content_length: int | None = None,
    ) -> None:
        self.content_type = content_type
        self.content_length = content_length
        self._chunks = chunks
        self._close = close

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self._chunks

    async def aclose(self) -> None:
        await self._close()

    async def read(self) -> bytes:
        """The whole body (tests and small instances only: it defeats streaming)."""
        try:
            return b"".join([chunk async for chunk in self._chunks])
        finally:
            await self.aclose()

    async def __aenter__(self) -> Retrieved:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()


@runtime_checkable
class Archive(Protocol):
    """A DICOM archive. UIDs are checked before use (``ArchiveQueryError``); an unknown
    study, series or instance raises ``ArchiveNotFound``; an archive that cannot answer
    raises ``ArchiveUnavailable``."""

    name: str

    async def search_studies(self, query: QidoQuery) -> list[DicomJson]: ...

    async def search_series(self, study_uid: str | None, query: QidoQuery) -> list[DicomJson]: ...

    async def search_instances(
        self, study_uid: str | None, series_uid: str | None, query: QidoQuery
    ) -> list[DicomJson]: ...

    async def retrieve_study(self, study_uid: str, accept: str = DICOM_ACCEPT) -> Retrieved: ...

    async def retrieve_series(self, study_uid: str, series_uid: str, accept: str = DICOM_ACCEPT) -> Retrieved: ...

    async def retrieve_instance(
        self, study_uid: str, series_uid: str, sop_uid: str, accept: str = DICOM_ACCEPT
    ) -> Retrieved: ...

    async def metadata(self, study_uid: str, series_uid: str | None = None) -> list[DicomJson]: ...

    async def store(self, parts: list[bytes]) -> StoreResult: ...

    async def delete(self, study_uid: str) -> None: ...

    async def aclose(self) -> None: ...
