"""``sync``: catalogue what an upstream archive already holds, by QIDO paging.

Pages of ``limit``/``offset`` studies are read in turn; after each page the next offset
is saved, so a run that stops (network, Ctrl-C) resumes where it was. A finished sync
starts again from the first page (studies may have arrived since), unless told otherwise.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import Any

from pacsguard.archives.base import Archive, DicomJson
from pacsguard.archives.catalogue import StudyCatalogue
from pacsguard.archives.query import QidoQuery, is_valid_uid

__all__ = ["SyncReport", "sync"]

Progress = Callable[[int], None]
_FIELDS = ("StudyDescription", "ModalitiesInStudy", "StudyDate", "PatientID")


@dataclass(frozen=True, slots=True)
class SyncReport:
    """What one ``sync`` run did: where it started, studies catalogued, rows skipped."""

    started_at_offset: int
    recorded: int
    skipped: int
    next_offset: int
    finished: bool


async def sync(
    archive: Archive,
    zone: str,
    catalogue: StudyCatalogue,
    progress: Progress | None = None,
    *,
    page_size: int = 100,
    max_pages: int | None = None,
    restart: bool = False,
) -> SyncReport:
    """Page through ``archive``'s studies into ``catalogue`` as owned by ``zone``.

    ``progress(done)`` is called after each page with the number of studies seen so far.
    ``max_pages`` stops early (the next run resumes). Raises ``ArchiveUnavailable``; the
    position reached before the failure is kept.
    """
    offset, finished = catalogue.sync_position(zone, archive.name)
    if finished or restart:
        offset = 0
    start, recorded, skipped, pages = offset, 0, 0, 0
    while max_pages is None or pages < max_pages:
        page = await archive.search_studies(QidoQuery(limit=page_size, offset=offset, includefield=_FIELDS))
        pages += 1
        for study in page:
            if _record(catalogue, zone, archive.name, study):
                recorded += 1
            else:
                skipped += 1
        offset += len(page)
        finished = len(page) < page_size
        catalogue.save_sync_position(zone, archive.name, offset, finished=finished)
        if progress is not None:
            progress(offset)
        if finished:
            break
    return SyncReport(start, recorded, skipped, offset, finished)


def _record(catalogue: StudyCatalogue, zone: str, archive: str, study: DicomJson) -> bool:
    uid = _first(study, "0020000D")
    if not isinstance(uid, str) or not is_valid_uid(uid):
        return False
    modalities = study.get("00080061", {}).get("Value", []) or []
    catalogue.record(
        uid,
        zone=zone,
        archive=archive,
        patient_id=str(_first(study, "00100020") or ""),
        modality=",".join(str(m) for m in modalities),
        study_date=_date(_first(study, "00080020")),
        description=str(_first(study, "00081030") or ""),
    )
    return True


def _first(study: DicomJson, tag: str) -> Any:
    values = study.get(tag, {}).get("Value") or [None]
    return values[0]


def _date(value: Any) -> date | None:
    text = str(value or "")
    try:
        return date(int(text[:4]), int(text[4:6]), int(text[6:8])) if len(text) == 8 else None
    except ValueError:
        return None
