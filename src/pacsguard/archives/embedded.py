"""``EmbeddedArchive``: the default archive, with no PACS of its own.

Instance files live under a directory, each sealed with AES-256-GCM (``sealing``); the
index (studies, series, instances) is in the database (``_index``). QIDO answers from the
index; ``includefield`` beyond the indexed attributes and metadata read the sealed files.
Retrieval streams multipart/related, one instance decrypted at a time, so memory stays at
one instance whatever the study size. Database and file work runs in worker threads.
"""

from __future__ import annotations

import contextlib
import io
import os
import secrets
from collections.abc import AsyncGenerator, Callable
from pathlib import Path
from typing import Any, TypeVar

import anyio.to_thread
from pydicom import dcmread
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset
from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError

from pacsguard.archives import _index
from pacsguard.archives.base import DICOM_ACCEPT, DicomJson, InstanceInfo, Retrieved, StoreResult
from pacsguard.archives.parts import check_parts
from pacsguard.archives.query import Level, QidoQuery, is_valid_uid
from pacsguard.archives.sealing import Sealer
from pacsguard.errors import ArchiveNotFound, ArchiveQueryError

__all__ = ["EmbeddedArchive"]

T = TypeVar("T")
BULK_THRESHOLD = 1024
_NOT_INDEXED_OK = {"SpecificCharacterSet", "RetrieveURL"}
# Attributes of a lower level that a study- or series-level result must not take from
# the instance file it reads for includefield.
_INSTANCE_ONLY = {"SOPInstanceUID", "SOPClassUID", "InstanceNumber", "ContentDate", "ContentTime", "AcquisitionNumber"}
_SERIES_ONLY = {"SeriesInstanceUID", "SeriesNumber", "SeriesDescription", "Modality", "SeriesDate", "SeriesTime"}


class EmbeddedArchive:
    """An archive in a directory plus the database. ``name`` keeps several apart in one
    database; ``public_url`` (the gateway's DICOMweb root) is used in RetrieveURL and
    BulkDataURI values."""

    def __init__(self, name: str, engine: Engine, root: Path, key: bytes, *, public_url: str = "") -> None:
        self.name = name
        self.root = root
        self.public_url = public_url.rstrip("/")
        self._engine = engine
        self._sealer = Sealer(key)

    async def aclose(self) -> None:
        """Nothing to release: the engine belongs to the caller."""

    @staticmethod
    async def _run(fn: Callable[..., T], *args: Any) -> T:
        return await anyio.to_thread.run_sync(fn, *args)

    # --- QIDO-RS -----------------------------------------------------------------------
    async def search_studies(self, query: QidoQuery) -> list[DicomJson]:
        """Studies matching ``query``; raises ``ArchiveQueryError`` for a query of another level."""
        return await self._run(self._search, query, Level.STUDY, None, None)

    async def search_series(self, study_uid: str | None, query: QidoQuery) -> list[DicomJson]:
        """Series (of one study, or all) matching ``query``."""
        return await self._run(self._search, query, Level.SERIES, _uid_or_none("StudyInstanceUID", study_uid), None)

    async def search_instances(
        self, study_uid: str | None, series_uid: str | None, query: QidoQuery
    ) -> list[DicomJson]:
        """Instances (of one study or series, or all) matching ``query``."""
        study = _uid_or_none("StudyInstanceUID", study_uid)
        series = _uid_or_none("SeriesInstanceUID", series_uid)
        return await self._run(self._search, query, Level.INSTANCE, study, series)

    def _search(self, query: QidoQuery, level: Level, study_uid: str | None, series_uid: str | None) -> list[DicomJson]:
        if query.level is not level:
            raise ArchiveQueryError("level", f"a {query.level}-level query cannot search {level} level")
        with self._engine.connect() as conn:
            rows = _index.search(conn, self.name, query, level.value, study_uid, series_uid)
        return [self._result(row, level, query.includefield) for row in rows]

    def _result(self, row: Any, level: Level, fields: tuple[str, ...]) -> DicomJson:
        ds = Dataset()
        ds.SpecificCharacterSet = "ISO_IR 192"
        ds.StudyInstanceUID = row.study_uid
        if level is Level.STUDY:
            _study_attributes(ds, row)
            ds.RetrieveURL = f"{self.public_url}/studies/{row.study_uid}"
        elif level is Level.SERIES:
            ds.SeriesInstanceUID, ds.Modality = row.series_uid, row.modality
            ds.SeriesNumber = row.series_number
            ds.NumberOfSeriesRelatedInstances = row.instance_count
            ds.RetrieveURL = f"{self.public_url}/studies/{row.study_uid}/series/{row.series_uid}"
        else:
            ds.SeriesInstanceUID, ds.SOPInstanceUID, ds.SOPClassUID = row.series_uid, row.sop_uid, row.sop_class_uid
            ds.InstanceNumber = row.instance_number
            ds.RetrieveURL = (
                f"{self.public_url}/studies/{row.study_uid}/series/{row.series_uid}/instances/{row.sop_uid}"
            )
        missing = [f for f in fields if f == "all" or (f not in ds and f not in _NOT_INDEXED_OK)]
        if missing:
            self._include_from_file(ds, row, level, fields)
        return ds.to_json_dict(BULK_THRESHOLD, lambda _elem: "")

    def _include_from_file(self, ds: Dataset, row: Any, level: Level, fields: tuple[str, ...]) -> None:
        """Add ``includefield`` attributes that the index lacks, from the first instance file."""
        with self._engine.connect() as conn:
            series = row.series_uid if level is not Level.STUDY else None
            sop = row.sop_uid if level is Level.INSTANCE else None
            first = _index.instance_rows(conn, self.name, row.study_uid, series, sop)[:1]
        if not first:
            return
        source = dcmread(io.BytesIO(self._read(first[0])), stop_before_pixels=True)
        lower = _INSTANCE_ONLY if level is Level.SERIES else _INSTANCE_ONLY | _SERIES_ONLY
        for elem in source:
            if elem.tag in ds or elem.tag.group == 0x7FE0 or elem.VR in ("OB", "OW", "OF", "OD", "UN"):
                continue
            if level is not Level.INSTANCE and elem.keyword in lower:
                continue
            if "all" in fields or elem.keyword in fields:
                ds.add(elem)

    # --- WADO-RS -----------------------------------------------------------------------
    async def retrieve_study(self, study_uid: str, accept: str = DICOM_ACCEPT) -> Retrieved:
        """The study as multipart/related, streamed; raises ``ArchiveNotFound``."""
        return await self._retrieve(accept, _uid("StudyInstanceUID", study_uid))

    async def retrieve_series(self, study_uid: str, series_uid: str, accept: str = DICOM_ACCEPT) -> Retrieved:
        """One series, streamed; raises ``ArchiveNotFound``."""
        return await self._retrieve(accept, _uid("StudyInstanceUID", study_uid), _uid("SeriesInstanceUID", series_uid))

    async def retrieve_instance(
        self, study_uid: str, series_uid: str, sop_uid: str, accept: str = DICOM_ACCEPT
    ) -> Retrieved:
        """One instance, as a one-part multipart/related; raises ``ArchiveNotFound``."""
        return await self._retrieve(
            accept,
            _uid("StudyInstanceUID", study_uid),
            _uid("SeriesInstanceUID", series_uid),
            _uid("SOPInstanceUID", sop_uid),
        )

    async def _retrieve(self, accept: str, study: str, series: str | None = None, sop: str | None = None) -> Retrieved:
        if "application/dicom" not in accept.lower() or "multipart/related" not in accept.lower():
            raise ArchiveQueryError("Accept", 'this archive serves multipart/related; type="application/dicom" only')
        rows = await self._run(self._rows, study, series, sop)
        boundary = secrets.token_hex(16)
        content_type = f'multipart/related; type="application/dicom"; boundary={boundary}'
        parts = self._parts(rows, boundary)
        return Retrieved(content_type, parts, parts.aclose)

    def _rows(self, study: str, series: str | None, sop: str | None) -> list[Any]:
        with self._engine.connect() as conn:
            rows = _index.instance_rows(conn, self.name, study, series, sop)
        if not rows:
            raise ArchiveNotFound(
                f"archive {self.name!r} holds no such {'instance' if sop else 'series' if series else 'study'}"
            )
        return rows

    async def _parts(self, rows: list[Any], boundary: str) -> AsyncGenerator[bytes]:
        for row in rows:
            data = await self._run(self._read, row)
            head = (
                f"--{boundary}\r\nContent-Type: application/dicom; transfer-syntax={row.transfer_syntax}\r\n"
                f"Content-Length: {len(data)}\r\n\r\n"
            )
            yield head.encode("ascii")
            yield data
            yield b"\r\n"
        yield f"--{boundary}--\r\n".encode("ascii")

    def _read(self, row: Any) -> bytes:
        return self._sealer.open((self.root / row.path).read_bytes(), row.sop_uid)

    async def metadata(self, study_uid: str, series_uid: str | None = None) -> list[DicomJson]:
        """Every instance's header as DICOM JSON; bulk values become BulkDataURIs."""
        study, series = _uid("StudyInstanceUID", study_uid), _uid_or_none("SeriesInstanceUID", series_uid)
        rows = await self._run(self._rows, study, series, None)
        return [await self._run(self._metadata_of, row) for row in rows]

    def _metadata_of(self, row: Any) -> DicomJson:
        ds = dcmread(io.BytesIO(self._read(row)))
        base = f"{self.public_url}/studies/{row.study_uid}/series/{row.series_uid}/instances/{row.sop_uid}/bulk"

        def bulk(elem: DataElement) -> str:
            return f"{base}/{elem.tag:08X}"

        return ds.to_json_dict(BULK_THRESHOLD, bulk)

    # --- STOW-RS and deletion ------------------------------------------------------------
    async def store(self, parts: list[bytes]) -> StoreResult:
        """Store instances. A request with any part that is not a valid DICOM instance
        stores nothing: each bad part is refused with its reason, the others with
        "not stored". A known instance is kept as it is and counted as stored."""
        return await self._run(self._store, parts)

    def _store(self, parts: list[bytes]) -> StoreResult:
        try:
            return self._store_once(parts)
        except IntegrityError:
            # A concurrent store created the same study, series or instance first; the
            # second attempt sees its rows and adds only what is still missing.
            return self._store_once(parts)

    def _store_once(self, parts: list[bytes]) -> StoreResult:
        checked, refusal = check_parts(parts)
        if refusal is not None:
            return refusal
        written: list[Path] = []
        try:
            with self._engine.begin() as conn:
                known = _index.existing(conn, self.name, [info.sop_instance_uid for _, info in checked])
                for index, info in checked:
                    if info.sop_instance_uid in known:
                        continue
                    known.add(info.sop_instance_uid)
                    relative, size = self._write(parts[index], info, written)
                    _index.insert_instance(conn, self.name, info, _extra(parts[index]), relative, size)
        except BaseException:
            for path in written:
                path.unlink(missing_ok=True)
            raise
        return StoreResult(tuple(info for _, info in checked), ())

    def _write(self, data: bytes, info: InstanceInfo, written: list[Path]) -> tuple[str, int]:
        # A fresh random name per write: a failed store removes only files it wrote itself,
        # never the file of a concurrent store of the same instance.
        name = secrets.token_hex(16)
        relative = f"{name[:2]}/{name[2:4]}/{name}.dcm.sealed"
        target = self.root / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        sealed = self._sealer.seal(data, info.sop_instance_uid)
        temporary = target.with_suffix(".part")
        with temporary.open("wb") as out:
            out.write(sealed)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, target)
        written.append(target)
        return relative, len(data)

    async def delete(self, study_uid: str) -> None:
        """Delete a study's rows and files; raises ``ArchiveNotFound``."""
        await self._run(self._delete, _uid("StudyInstanceUID", study_uid))

    def _delete(self, study_uid: str) -> None:
        with self._engine.begin() as conn:
            paths = _index.delete_study(conn, self.name, study_uid)
        if not paths:
            raise ArchiveNotFound(f"archive {self.name!r} holds no study {study_uid}")
        for relative in paths:
            with contextlib.suppress(FileNotFoundError):
                (self.root / relative).unlink()


def _study_attributes(ds: Dataset, row: Any) -> None:
    ds.PatientID, ds.PatientName = row.patient_id, row.patient_name
    ds.StudyDate = row.study_date.strftime("%Y%m%d") if row.study_date else ""
    ds.StudyTime = row.study_time
    ds.AccessionNumber = row.accession_number
    ds.StudyDescription = row.study_description
    ds.ModalitiesInStudy = [m for m in row.modalities.split(",") if m]
    ds.NumberOfStudyRelatedSeries = row.series_count
    ds.NumberOfStudyRelatedInstances = row.instance_count


def _extra(data: bytes) -> dict[str, Any]:
    ds = dcmread(io.BytesIO(data), stop_before_pixels=True)
    return {
        "study_time": str(ds.get("StudyTime", "") or "")[:16],
        "series_number": _int_or_none(ds.get("SeriesNumber")),
        "instance_number": _int_or_none(ds.get("InstanceNumber")),
    }


def _int_or_none(value: Any) -> int | None:
    try:
        return int(value) if value not in (None, "") else None
    except (TypeError, ValueError):
        return None


def _uid(key: str, value: str) -> str:
    if not is_valid_uid(value):
        raise ArchiveQueryError(key, f"{value!r} is not a valid DICOM UID")
    return value


def _uid_or_none(key: str, value: str | None) -> str | None:
    return None if value is None else _uid(key, value)
