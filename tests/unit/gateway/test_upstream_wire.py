"""The WADO-RS fast path (``archives.wire``) against a scripted HTTP server on loopback:
bodies arrive whole in large pieces, what it cannot read falls back to httpx."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import pytest

from pacsguard.archives import DicomWebArchive
from pacsguard.archives.wire import PIECE, Unsuitable, raw_get
from pacsguard.errors import ArchiveNotFound, ArchiveUnavailable
from tests.postgres import free_port
from tests.world import run

UID = "1.2.826.0.1.3680043.99.7"
BODY = bytes(range(256)) * (3 * PIECE // 256 + 77)  # a little over 3 MiB


@contextlib.asynccontextmanager
async def scripted(answer: bytes, *, close: bool = True) -> AsyncIterator[str]:
    """A server answering every request with ``answer``; it keeps the connection open
    afterwards unless ``close``. Yields its base URL."""

    writers: list[asyncio.StreamWriter] = []

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writers.append(writer)
        await reader.readuntil(b"\r\n\r\n")
        writer.write(answer)
        await writer.drain()
        if not close:
            await reader.read()  # until the client goes away
        writer.close()

    port = free_port()
    server = await asyncio.start_server(serve, "127.0.0.1", port)
    try:
        async with server:
            yield f"http://127.0.0.1:{port}"
    finally:
        for writer in writers:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()


def _head(extra: str = "") -> bytes:
    return f"HTTP/1.1 200 OK\r\nContent-Type: multipart/related; boundary=x\r\n{extra}\r\n".encode()


async def _fetch(answer: bytes, close: bool = True) -> tuple[int, list[bytes]]:
    async with scripted(answer, close=close) as url:
        got = await raw_get(f"{url}/studies/{UID}", {"Accept": "*/*"}, timeout=10)
        try:
            return got.status, [piece async for piece in got.body]
        finally:
            await got.aclose()


def test_a_body_ended_by_close_arrives_whole_in_large_pieces() -> None:
    status, pieces = run(_fetch(_head() + BODY))
    assert status == 200
    assert b"".join(pieces) == BODY
    assert max(len(p) for p in pieces) <= PIECE


def test_a_content_length_body_ends_at_its_length_on_a_kept_connection() -> None:
    status, pieces = run(_fetch(_head(f"Content-Length: {len(BODY)}\r\n") + BODY, close=False))
    assert status == 200
    assert b"".join(pieces) == BODY


def test_a_body_cut_short_is_an_error_not_a_short_answer() -> None:
    with pytest.raises(ConnectionResetError):
        run(_fetch(_head(f"Content-Length: {len(BODY) + 10}\r\n") + BODY))


def test_chunked_answers_and_tls_are_left_to_the_general_client() -> None:
    with pytest.raises(Unsuitable):
        run(_fetch(_head("Transfer-Encoding: chunked\r\n") + b"3\r\nabc\r\n0\r\n\r\n"))
    with pytest.raises(Unsuitable):
        run(raw_get("https://127.0.0.1:1/x", {}, timeout=1))


def test_the_archive_falls_back_to_httpx_for_a_chunked_server() -> None:
    async def go() -> tuple[bytes, bool]:
        answer = _head("Transfer-Encoding: chunked\r\n") + b"3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"
        async with scripted(answer) as url:
            archive = DicomWebArchive(url)
            body = await (await archive.retrieve_study(UID)).read()
            second = await (await archive.retrieve_study(UID)).read()
            assert second == body
            raw = archive._raw  # the switch is what is tested
            await archive.aclose()
            return body, raw

    assert run(go()) == (b"abcde", False)


def test_errors_and_unreachable_archives_through_the_fast_path() -> None:
    async def missing() -> None:
        async with scripted(b"HTTP/1.1 404 Not Found\r\nContent-Length: 2\r\n\r\n{}") as url:
            await DicomWebArchive(url).retrieve_study(UID)

    with pytest.raises(ArchiveNotFound):
        run(missing())
    with pytest.raises(ArchiveUnavailable):
        run(DicomWebArchive(f"http://127.0.0.1:{free_port()}").retrieve_study(UID))


def test_searches_take_the_fast_path_and_fall_back_for_chunked_answers() -> None:
    from pacsguard.archives import QidoQuery

    item = b'[{"0020000D": {"vr": "UI", "Value": ["1.2.3"]}}]'

    async def go(answer: bytes) -> tuple[list[object], bool]:
        async with scripted(answer) as url:
            archive = DicomWebArchive(url)
            found = await archive.search_studies(QidoQuery())
            raw = archive._raw_json  # the switch is what is tested
            await archive.aclose()
            return list(found), raw

    plain = b"HTTP/1.1 200 OK\r\nContent-Type: application/dicom+json\r\nContent-Length: %d\r\n\r\n" % len(item)
    assert run(go(plain + item)) == ([{"0020000D": {"vr": "UI", "Value": ["1.2.3"]}}], True)
    chunked = b"HTTP/1.1 200 OK\r\nContent-Type: application/dicom+json\r\nTransfer-Encoding: chunked\r\n\r\n"
    assert run(go(chunked + b"%x\r\n%s\r\n0\r\n\r\n" % (len(item), item)))[1] is False
    with pytest.raises(ArchiveUnavailable):
        run(go(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nnope!"))
    with pytest.raises(ArchiveUnavailable):
        run(go(b"HTTP/1.1 500 Oops\r\nContent-Length: 0\r\n\r\n"))
