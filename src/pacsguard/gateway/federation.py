"""Federated QIDO-RS: one search sent to every zone's archive at once, merged, deduplicated.

Each archive gets the same rebuilt query (never the client's raw string), without the
client's paging: the decision point filters the merged result first, and only then is
the page cut, so neither counts nor pages reveal a study the caller may not see. An
archive that fails or times out is named in ``failed``; the others still answer.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field, replace

from pacsguard.archives import Archive, DicomJson, Level, QidoQuery
from pacsguard.gateway.core import is_archive_failure

__all__ = ["STUDY_UID", "FanOut", "Found", "search_all"]

log = logging.getLogger("pacsguard.gateway")

STUDY_UID = "0020000D"
_KEY = {Level.STUDY: STUDY_UID, Level.SERIES: "0020000E", Level.INSTANCE: "00080018"}
# Lower-level results must name their study (to be decided on) and patient (to catalogue it).
_NEEDED = ("StudyInstanceUID", "PatientID")


@dataclass(frozen=True, slots=True)
class Found:
    """One merged result: the zone whose archive returned it, its study, the data set."""

    zone: str
    study_uid: str
    item: DicomJson


@dataclass(slots=True)
class FanOut:
    """The merged results, the archives that did not answer, and whether a cap was hit."""

    results: list[Found] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    truncated: bool = False


def upstream_query(query: QidoQuery, cap: int) -> QidoQuery:
    """The query each archive gets: no client paging (``cap`` results at most), and at
    series or instance level the study and patient added to the returned fields."""
    fields = query.includefield
    if query.level is not Level.STUDY and "all" not in fields:
        fields = tuple(dict.fromkeys((*fields, *_NEEDED)))
    return replace(query.with_page(cap, 0), includefield=fields)


async def search_all(
    archives: Mapping[str, Archive],
    query: QidoQuery,
    *,
    study_uid: str | None,
    series_uid: str | None,
    timeout: float,
    cap: int,
) -> FanOut:
    """Search every archive concurrently; merge in zone order, one result per UID."""
    upstream = upstream_query(query, cap)
    calls = [_search(archive, upstream, study_uid, series_uid, timeout) for archive in archives.values()]
    answers = await asyncio.gather(*calls, return_exceptions=True)
    out = FanOut()
    seen: set[str] = set()
    key = _KEY[query.level]
    for (zone, archive), answer in zip(archives.items(), answers, strict=True):
        if isinstance(answer, BaseException):
            if not is_archive_failure(answer):
                raise answer
            log.warning("archive %s (zone %s) failed a search: %s", archive.name, zone, answer)
            out.failed.append(archive.name)
            continue
        out.truncated |= len(answer) >= cap
        for item in answer:
            uid, study = _first(item, key), study_uid or _first(item, STUDY_UID)
            if not uid or not study or uid in seen:
                continue  # a result that names no study cannot be decided on: left out
            seen.add(uid)
            out.results.append(Found(zone, study, item))
    return out


async def _search(
    archive: Archive, query: QidoQuery, study_uid: str | None, series_uid: str | None, timeout: float
) -> list[DicomJson]:
    if query.level is Level.STUDY:
        call = archive.search_studies(query)
    elif query.level is Level.SERIES:
        call = archive.search_series(study_uid, query)
    else:
        call = archive.search_instances(study_uid, series_uid, query)
    return await asyncio.wait_for(call, timeout)


def _first(item: DicomJson, tag: str) -> str:
    element = item.get(tag)
    values = element.get("Value") if isinstance(element, dict) else None
    return str(values[0]) if isinstance(values, list) and values and isinstance(values[0], str) else ""
