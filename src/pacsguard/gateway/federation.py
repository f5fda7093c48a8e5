"""Federated QIDO-RS: one search sent to every zone's archive, merged, deduplicated,
decided, and paged — fetching upstream only as far as the client's page needs.

Each archive gets the same rebuilt query (never the client's raw string) with the
gateway's own paging. The merged sequence is fixed: archives in zone order, each in its
own result order, one result per UID (the first archive to return it). Every upstream
page is decided in one batch (``Decide``) before it counts, and the client's page is cut
from the permitted results only, so neither counts nor pages reveal a study the caller
may not see: the page at ``offset`` is the same page as when every match is fetched and
filtered first. What changes is the cost: a page of 50 for a caller who may see most
studies costs one upstream page of 50, not every match.

The first page is asked of every archive at once (so an archive that is down is named in
``failed`` and the others still answer); further pages are fetched from one archive at a
time, sized from the share of results permitted so far, until the client's page is full,
the archive is exhausted, or ``cap`` results of it were examined (``truncated``).
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field, replace

from pacsguard.archives import Archive, DicomJson, Level, QidoQuery
from pacsguard.gateway.core import is_archive_failure

__all__ = ["MAX_PAGE", "STUDY_UID", "Decide", "Found", "Merged", "search_pages", "upstream_query"]

log = logging.getLogger("pacsguard.gateway")

STUDY_UID = "0020000D"
MAX_PAGE = 1000  # the most results asked of an archive in one upstream request
_MIN_PAGE = 20
_KEY = {Level.STUDY: STUDY_UID, Level.SERIES: "0020000E", Level.INSTANCE: "00080018"}
# Lower-level results must name their study (to be decided on) and patient (to catalogue it).
_NEEDED = ("StudyInstanceUID", "PatientID")


@dataclass(frozen=True, slots=True)
class Found:
    """One merged result: the zone whose archive returned it, its study, the data set."""

    zone: str
    study_uid: str
    item: DicomJson


Decide = Callable[[list[Found]], Awaitable[list[bool]]]
"""Decide one batch of results: ``True`` for each the caller may see (in order)."""


@dataclass(slots=True)
class Merged:
    """The permitted results in merged order (at least ``offset + limit`` of them when
    there are that many), what was examined and refused, the archives that did not
    answer, whether a cap was hit, and whether every match was examined."""

    permitted: list[DicomJson] = field(default_factory=list)
    examined: int = 0
    refused: int = 0
    failed: list[str] = field(default_factory=list)
    truncated: bool = False
    complete: bool = True


def upstream_query(query: QidoQuery, limit: int, offset: int) -> QidoQuery:
    """The query an archive gets for one upstream page: the client's filters with the
    gateway's paging, and at series or instance level the study and patient added to the
    returned fields."""
    fields = query.includefield
    if query.level is not Level.STUDY and "all" not in fields:
        fields = tuple(dict.fromkeys((*fields, *_NEEDED)))
    return replace(query.with_page(limit, offset), includefield=fields)


async def search_pages(
    archives: Mapping[str, Archive],
    query: QidoQuery,
    decide: Decide,
    *,
    study_uid: str | None,
    series_uid: str | None,
    timeout: float,
    cap: int,
) -> Merged:
    """Collect permitted results until the client's page (``query.offset`` +
    ``query.limit``; no limit: every match up to ``cap`` per archive) is full."""
    want = None if query.limit is None else query.offset + query.limit
    first = min(cap, MAX_PAGE if want is None else max(want, 1))
    search = _Searcher(query, study_uid, series_uid, timeout)
    pages = await asyncio.gather(*(search.page(a, first, 0) for a in archives.values()), return_exceptions=True)
    out = Merged()
    seen: set[str] = set()
    for index, ((zone, archive), page) in enumerate(zip(archives.items(), pages, strict=True)):
        cursor = _Cursor(zone, archive, size=first)
        if await _drain(out, search, decide, seen, cursor, page, want, cap):
            out.complete &= index == len(archives) - 1  # later archives were not asked further
            return out
    return out


async def _drain(
    out: Merged, search: _Searcher, decide: Decide, seen: set[str], cursor: _Cursor,
    page: list[DicomJson] | BaseException, want: int | None, cap: int,
) -> bool:  # fmt: skip
    """Take one archive's pages until the client's page is full (``True``), the archive
    is exhausted, fails, or reached ``cap``."""
    while not isinstance(page, BaseException):
        cursor.offset += len(page)
        await _take(out, decide, seen, search.key, [cursor.found(item, search.study_uid) for item in page])
        exhausted = len(page) < cursor.size
        if want is not None and len(out.permitted) >= want:
            out.complete &= exhausted
            return True
        if exhausted:
            return False
        if cursor.offset >= cap:
            out.truncated, out.complete = True, False
            return False
        cursor.size = _next_size(out, want, cap - cursor.offset)
        page = await _try(search.page(cursor.archive, cursor.size, cursor.offset))
    _failed(out, cursor.archive, page)
    return False


@dataclass(slots=True)
class _Cursor:
    zone: str
    archive: Archive
    offset: int = 0
    size: int = 0

    def found(self, item: DicomJson, study_uid: str | None) -> tuple[str, str, DicomJson]:
        return self.zone, study_uid or _first(item, STUDY_UID), item


@dataclass(frozen=True, slots=True)
class _Searcher:
    query: QidoQuery
    study_uid: str | None
    series_uid: str | None
    timeout: float

    @property
    def key(self) -> str:
        return _KEY[self.query.level]

    async def page(self, archive: Archive, limit: int, offset: int) -> list[DicomJson]:
        upstream = upstream_query(self.query, limit, offset)
        if upstream.level is Level.STUDY:
            call = archive.search_studies(upstream)
        elif upstream.level is Level.SERIES:
            call = archive.search_series(self.study_uid, upstream)
        else:
            call = archive.search_instances(self.study_uid, self.series_uid, upstream)
        return await asyncio.wait_for(call, self.timeout)


async def _try(call: Awaitable[list[DicomJson]]) -> list[DicomJson] | BaseException:
    try:
        return await call
    except Exception as exc:
        return exc


def _failed(out: Merged, archive: Archive, exc: BaseException) -> None:
    if not is_archive_failure(exc):
        raise exc
    log.warning("archive %s failed a search: %s", archive.name, exc)
    out.failed.append(archive.name)
    out.complete = False


async def _take(out: Merged, decide: Decide, seen: set[str], key: str, rows: list[tuple[str, str, DicomJson]]) -> None:
    """Decide one upstream page (one batch) and keep what the caller may see."""
    batch = []
    for zone, study, item in rows:
        uid = _first(item, key)
        if not uid or not study or uid in seen:
            continue  # a result that names no study cannot be decided on: left out
        seen.add(uid)
        batch.append(Found(zone, study, item))
    out.examined += len(batch)
    if not batch:
        return
    verdicts = await decide(batch)
    out.permitted.extend(found.item for found, ok in zip(batch, verdicts, strict=True) if ok)
    out.refused += verdicts.count(False)


def _next_size(out: Merged, want: int | None, left: int) -> int:
    """The next upstream page: enough to fill the client's page at the share permitted
    so far (a tenth at worst), between ``_MIN_PAGE`` and ``MAX_PAGE``."""
    if want is None:
        return min(MAX_PAGE, left)
    share = max(0.1, (out.examined - out.refused) / out.examined) if out.examined else 1.0
    need = math.ceil((want - len(out.permitted)) / share)
    return max(1, min(left, MAX_PAGE, max(_MIN_PAGE, need)))


def _first(item: DicomJson, tag: str) -> str:
    element = item.get(tag)
    values = element.get("Value") if isinstance(element, dict) else None
    return str(values[0]) if isinstance(values, list) and values and isinstance(values[0], str) else ""
