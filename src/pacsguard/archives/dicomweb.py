"""``DicomWebArchive``: any DICOMweb server (PS3.18) as an ``Archive``; tested on Orthanc.

Queries are rebuilt from a ``QidoQuery`` (never forwarded raw); every request carries a
``Forwarded`` header with the gateway's public address, so the RetrieveURLs an archive
writes point at the gateway and not at the archive. Bodies stream: WADO-RS responses are
handed on as raw chunks, never parsed. STOW-RS answers are checked part by part, because
Orthanc silently skips parts whose Content-Type is not exactly ``application/dicom``.
"""

from __future__ import annotations

import contextlib
import json
import secrets
from collections.abc import AsyncIterator, Sequence
from typing import Any, NoReturn

import anyio.to_thread
import httpx

from pacsguard.archives.base import DICOM_ACCEPT, DicomJson, InstanceInfo, Retrieved, StoreFailure, StoreResult
from pacsguard.archives.parts import check_parts, related_pieces
from pacsguard.archives.query import Level, QidoQuery, is_valid_uid
from pacsguard.archives.wire import Unsuitable, raw_get
from pacsguard.errors import ArchiveError, ArchiveNotFound, ArchiveQueryError, ArchiveUnavailable

__all__ = ["DicomWebArchive"]

_JSON = "application/dicom+json"
_REFERENCED = "00081199"
_FAILED = "00081198"
_REF_UID = "00081155"
_REASON = "00081197"


class DicomWebArchive:
    """A DICOMweb archive at ``base_url`` (e.g. ``http://127.0.0.1:8042/dicom-web``).

    ``public_url`` is the gateway's address, sent as ``Forwarded``. ``admin_url`` is
    used only by ``delete`` on servers without a DICOMweb delete (Orthanc: its REST root).
    """

    def __init__(
        self,
        base_url: str,
        *,
        name: str = "dicomweb",
        public_url: str | None = None,
        admin_url: str | None = None,
        client: httpx.AsyncClient | None = None,
        timeout: float = 60.0,
    ) -> None:
        self.name = name
        self.base_url = base_url.rstrip("/")
        self.admin_url = admin_url.rstrip("/") if admin_url else None
        self._client = client or httpx.AsyncClient(timeout=httpx.Timeout(timeout), trust_env=False)
        self._owns_client = client is None
        self._timeout = timeout
        self._raw = client is None  # WADO bodies read straight from the socket (``wire``); off for a given client
        self._raw_json = client is None  # QIDO and metadata answers likewise
        self._headers = {"Accept-Encoding": "identity"}
        if public_url:
            public = httpx.URL(public_url)
            self._headers["Forwarded"] = f"host={public.netloc.decode('ascii')};proto={public.scheme}"

    async def aclose(self) -> None:
        """Close the HTTP client if this archive made it."""
        if self._owns_client:
            await self._client.aclose()

    # --- QIDO-RS -----------------------------------------------------------------------
    async def search_studies(self, query: QidoQuery) -> list[DicomJson]:
        """QIDO-RS ``/studies``; raises ``ArchiveUnavailable``."""
        return await self._search("/studies", query, Level.STUDY)

    async def search_series(self, study_uid: str | None, query: QidoQuery) -> list[DicomJson]:
        """QIDO-RS ``/studies/{S}/series`` (or ``/series``); raises ``ArchiveUnavailable``."""
        path = f"/studies/{_uid('StudyInstanceUID', study_uid)}/series" if study_uid else "/series"
        return await self._search(path, query, Level.SERIES)

    async def search_instances(
        self, study_uid: str | None, series_uid: str | None, query: QidoQuery
    ) -> list[DicomJson]:
        """QIDO-RS instances under a study, a series, or all; raises ``ArchiveUnavailable``."""
        path = ""
        if study_uid:
            path += f"/studies/{_uid('StudyInstanceUID', study_uid)}"
        if series_uid:
            if not study_uid:
                raise ArchiveQueryError("SeriesInstanceUID", "a series needs its study in the path")
            path += f"/series/{_uid('SeriesInstanceUID', series_uid)}"
        return await self._search(path + "/instances", query, Level.INSTANCE)

    async def _search(self, path: str, query: QidoQuery, level: Level) -> list[DicomJson]:
        if query.level is not level:
            raise ArchiveQueryError("level", f"a {query.level}-level query cannot search {level} level")
        text = query.to_query_string()
        # The URL is built as text: httpx keeps ^ * ? raw in it (``params=`` would encode them).
        url = f"{self.base_url}{path}" + (f"?{text}" if text else "")
        return await self._get_json(url)

    # --- WADO-RS -----------------------------------------------------------------------
    async def retrieve_study(self, study_uid: str, accept: str = DICOM_ACCEPT) -> Retrieved:
        """WADO-RS study, streamed; raises ``ArchiveNotFound``, ``ArchiveUnavailable``."""
        return await self._stream(f"/studies/{_uid('StudyInstanceUID', study_uid)}", accept)

    async def retrieve_series(self, study_uid: str, series_uid: str, accept: str = DICOM_ACCEPT) -> Retrieved:
        """WADO-RS series, streamed; raises ``ArchiveNotFound``, ``ArchiveUnavailable``."""
        path = f"/studies/{_uid('StudyInstanceUID', study_uid)}/series/{_uid('SeriesInstanceUID', series_uid)}"
        return await self._stream(path, accept)

    async def retrieve_instance(
        self, study_uid: str, series_uid: str, sop_uid: str, accept: str = DICOM_ACCEPT
    ) -> Retrieved:
        """WADO-RS instance, streamed; raises ``ArchiveNotFound``, ``ArchiveUnavailable``."""
        path = (
            f"/studies/{_uid('StudyInstanceUID', study_uid)}/series/{_uid('SeriesInstanceUID', series_uid)}"
            f"/instances/{_uid('SOPInstanceUID', sop_uid)}"
        )
        return await self._stream(path, accept)

    async def _stream(self, path: str, accept: str) -> Retrieved:
        headers = {**self._headers, "Accept": accept}
        if self._raw:
            try:
                return await self._raw_stream(self.base_url + path, headers)
            except Unsuitable:
                self._raw = False  # this server needs the general client from now on
        request = self._client.build_request("GET", self.base_url + path, headers=headers)
        try:
            response = await self._client.send(request, stream=True)
        except httpx.HTTPError as exc:
            raise self._unavailable(exc) from None
        if response.status_code != 200:
            await response.aread()
            await response.aclose()
            self._raise_for(response)
        length = response.headers.get("content-length")
        return Retrieved(
            response.headers.get("content-type", "application/octet-stream"),
            response.aiter_raw(),
            response.aclose,
            int(length) if length and length.isdigit() else None,
        )

    async def _raw_stream(self, url: str, headers: dict[str, str]) -> Retrieved:
        """The fast path (``wire.raw_get``): the body read from the socket in 1 MiB pieces."""
        try:
            answer = await raw_get(url, headers, self._timeout)
        except (OSError, TimeoutError) as exc:
            raise self._unavailable(exc) from None
        if answer.status != 200:
            with contextlib.suppress(OSError, TimeoutError):
                await answer.read()
            await answer.aclose()
            self._raise_status(answer.status, "GET", httpx.URL(url).path)
        length = answer.headers.get("content-length")
        return Retrieved(
            answer.headers.get("content-type", "application/octet-stream"),
            answer.body,
            answer.aclose,
            int(length) if length and length.isdigit() else None,
        )

    async def metadata(self, study_uid: str, series_uid: str | None = None) -> list[DicomJson]:
        """WADO-RS metadata of a study or series; raises ``ArchiveNotFound``, ``ArchiveUnavailable``."""
        path = f"/studies/{_uid('StudyInstanceUID', study_uid)}"
        if series_uid:
            path += f"/series/{_uid('SeriesInstanceUID', series_uid)}"
        return await self._get_json(f"{self.base_url}{path}/metadata")

    # --- STOW-RS and deletion ------------------------------------------------------------
    async def store(self, parts: list[bytes], *, checked: Sequence[InstanceInfo] | None = None) -> StoreResult:
        """STOW-RS. Each part is checked locally first (in a worker thread; ``checked``:
        what the caller's own ``inspect_part`` of every part gave, so it is not parsed
        twice): a request with any part that is not a valid DICOM instance sends nothing.
        The archive's answer is then matched to every part sent, so a part it skipped is
        a failure. Raises ``ArchiveUnavailable``."""
        if checked is not None and len(checked) == len(parts):
            infos = list(enumerate(checked))
        else:
            infos, refusal = await anyio.to_thread.run_sync(check_parts, parts)
            if refusal is not None:
                return refusal
        if not infos:
            return StoreResult((), ())
        boundary = secrets.token_hex(16)
        pieces = related_pieces([parts[i] for i, _ in infos], boundary)
        content_type = f'multipart/related; type="application/dicom"; boundary={boundary}'
        length = str(sum(len(p) for p in pieces))
        # 202 (some failed) and 409 (all failed) carry the per-instance answer (PS3.18 §10.5.3).
        response = await self._request(
            "POST",
            f"{self.base_url}/studies",
            content=_stream_pieces(pieces),  # sent piece by piece: the parts are not copied into one body
            headers={"Content-Type": content_type, "Content-Length": length, "Accept": _JSON},
            accept_status=(200, 202, 409),
        )
        return _match_stow(response, infos)

    async def delete(self, study_uid: str) -> None:
        """Delete a study; raises ``ArchiveNotFound``, ``ArchiveUnavailable``, or
        ``ArchiveError`` when the server offers no deletion."""
        uid = _uid("StudyInstanceUID", study_uid)
        if self.admin_url is None:
            await self._request("DELETE", f"{self.base_url}/studies/{uid}")
            return
        # Orthanc: DICOMweb has no delete, so its REST API is used for this one call.
        found = await self._request("POST", f"{self.admin_url}/tools/lookup", content=uid.encode())
        ids = [item["ID"] for item in found.json() if item.get("Type") == "Study"]
        if not ids:
            raise ArchiveNotFound(f"archive {self.name!r} holds no study {uid}")
        await self._request("DELETE", f"{self.admin_url}/studies/{ids[0]}")

    # --- plumbing --------------------------------------------------------------------------
    async def _get_json(self, url: str) -> list[DicomJson]:
        """A QIDO or metadata answer: through ``wire.raw_get`` for a plain-HTTP archive
        (httpx's per-request work was most of the gateway's QIDO overhead), else httpx."""
        if self._raw_json:
            try:
                answer = await raw_get(url, {**self._headers, "Accept": _JSON}, self._timeout)
                body = await answer.read()
            except Unsuitable:
                self._raw_json = False
            except (OSError, TimeoutError) as exc:
                raise self._unavailable(exc) from None
            else:
                if answer.status not in (200, 204):
                    self._raise_status(answer.status, "GET", httpx.URL(url).path)
                return _parse_json_list(body, self.name)
        response = await self._request("GET", url, headers={"Accept": _JSON})
        return _json_list(response, self.name)

    async def _request(
        self, method: str, url: str, *, accept_status: tuple[int, ...] = (200, 204), **kwargs: Any
    ) -> httpx.Response:
        headers = {**self._headers, **kwargs.pop("headers", {})}
        try:
            response = await self._client.request(method, url, headers=headers, **kwargs)
        except httpx.HTTPError as exc:
            raise self._unavailable(exc) from None
        if response.status_code not in accept_status:
            self._raise_for(response)
        return response

    def _unavailable(self, exc: Exception) -> ArchiveUnavailable:
        return ArchiveUnavailable(f"archive {self.name!r} at {self.base_url} cannot be reached: {type(exc).__name__}")

    def _raise_for(self, response: httpx.Response) -> NoReturn:
        self._raise_status(response.status_code, response.request.method, response.request.url.path)

    def _raise_status(self, status: int, method: str, path: str) -> NoReturn:
        where = f"archive {self.name!r} answered {status} to {method} {path}"
        if status == 404:
            raise ArchiveNotFound(where)
        if status in (405, 501):
            raise ArchiveError(f"{where}: the archive does not support this operation")
        raise ArchiveUnavailable(where)


async def _stream_pieces(pieces: list[bytes]) -> AsyncIterator[bytes]:
    for piece in pieces:
        yield piece


def _uid(key: str, value: str | None) -> str:
    if value is None or not is_valid_uid(value):
        raise ArchiveQueryError(key, f"{value!r} is not a valid DICOM UID")
    return value


def _json_list(response: httpx.Response, name: str) -> list[DicomJson]:
    if response.status_code == 204:
        return []
    return _parse_json_list(response.content, name)


def _parse_json_list(body: bytes, name: str) -> list[DicomJson]:
    if not body:
        return []
    try:
        data = json.loads(body)
    except ValueError:
        raise ArchiveUnavailable(f"archive {name!r} answered something that is not JSON") from None
    if not isinstance(data, list) or not all(isinstance(item, dict) for item in data):
        raise ArchiveUnavailable(f"archive {name!r} answered JSON that is not a list of data sets")
    return data


def _match_stow(response: httpx.Response, infos: list[tuple[int, InstanceInfo]]) -> StoreResult:
    """Each part sent is stored only if the archive's answer references it."""
    try:
        answer = response.json()
    except ValueError:
        answer = {}
    answer = answer if isinstance(answer, dict) else {}
    referenced = {_item_uid(item) for item in _sequence(answer, _REFERENCED)}
    reasons = {_item_uid(item): _reason(item) for item in _sequence(answer, _FAILED)}
    stored: list[InstanceInfo] = []
    failed: list[StoreFailure] = []
    for index, info in infos:
        uid = info.sop_instance_uid
        if uid in referenced:
            stored.append(info)
        else:
            reason = reasons.get(uid) or "the archive did not confirm this instance (skipped)"
            failed.append(StoreFailure(index, reason, uid))
    return StoreResult(tuple(stored), tuple(sorted(failed, key=lambda f: f.index)))


def _sequence(answer: dict[str, Any], tag: str) -> list[dict[str, Any]]:
    items = answer.get(tag, {}).get("Value", [])
    return [item for item in items if isinstance(item, dict)]


def _item_uid(item: dict[str, Any]) -> str:
    values = item.get(_REF_UID, {}).get("Value", [""])
    return str(values[0]) if values else ""


def _reason(item: dict[str, Any]) -> str:
    values = item.get(_REASON, {}).get("Value", [])
    return f"the archive refused it (failure reason {values[0]:#06x})" if values else "the archive refused it"
