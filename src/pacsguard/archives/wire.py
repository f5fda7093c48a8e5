"""One plain-HTTP GET whose body is read in large pieces straight from the socket: the
WADO-RS fast path of ``DicomWebArchive``.

A general HTTP client (httpx over httpcore and h11) reads 64 KiB at a time and copies
each piece several times on its way through the parser; for a study of hundreds of
megabytes that per-piece work cost the gateway about five times the archive's own CPU.
Here the socket is read with ``recv_into`` into 1 MiB buffers and each full buffer is
handed on as it is. Only what such a body can be is handled: ``http://``, a response
with a ``Content-Length`` or ended by the server closing the connection (Orthanc's
multipart streams), no content coding. Anything else (``Transfer-Encoding``, a
``Content-Encoding``) is reported as ``Unsuitable`` so the caller can use its general
client instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

__all__ = ["PIECE", "RawAnswer", "Unsuitable", "raw_get"]

PIECE = 1 << 20  # bytes handed on at once
_MAX_HEAD = 64 << 10


class Unsuitable(Exception):
    """The URL or the answer needs a general HTTP client (TLS, chunked, compressed)."""


@dataclass(slots=True)
class RawAnswer:
    """Status, headers (lower-case names) and the body as an async iterator of pieces;
    ``aclose`` closes the connection (also midway)."""

    status: int
    headers: dict[str, str]
    body: AsyncIterator[bytes]
    sock: socket.socket

    async def aclose(self) -> None:
        """Close the connection; the body stops."""
        with contextlib.suppress(OSError):
            self.sock.close()

    async def read(self) -> bytes:
        """The whole body (error answers only: they are small)."""
        try:
            return b"".join([piece async for piece in self.body])
        finally:
            await self.aclose()


async def raw_get(url: str, headers: Mapping[str, str], timeout: float) -> RawAnswer:
    """GET ``url`` and read the answer's head. Raises ``Unsuitable`` (use another
    client), ``OSError`` or ``TimeoutError`` (the server cannot be reached)."""
    parts = urlsplit(url)
    if parts.scheme != "http" or not parts.hostname:
        raise Unsuitable(f"not a plain http URL: {parts.scheme}")
    loop = asyncio.get_running_loop()
    sock = await _connect(loop, parts.hostname, parts.port or 80, timeout)
    try:
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        lines = [f"GET {target} HTTP/1.1", f"Host: {parts.netloc}", "Connection: close"]
        lines += [f"{k}: {v}" for k, v in headers.items() if k.lower() not in ("host", "connection")]
        async with asyncio.timeout(timeout):
            await loop.sock_sendall(sock, ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
            status, fields, rest = await _head(loop, sock)
        if "transfer-encoding" in fields or fields.get("content-encoding", "identity") != "identity":
            raise Unsuitable("the answer is chunked or compressed")
        length = fields.get("content-length")
        size = int(length) if length is not None and length.isdigit() else None
        return RawAnswer(status, fields, _body(loop, sock, rest, size, timeout), sock)
    except BaseException:
        sock.close()
        raise


async def _connect(loop: asyncio.AbstractEventLoop, host: str, port: int, timeout: float) -> socket.socket:
    infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setblocking(False)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        async with asyncio.timeout(timeout):
            await loop.sock_connect(sock, address)
    except BaseException:
        sock.close()
        raise
    return sock


async def _head(loop: asyncio.AbstractEventLoop, sock: socket.socket) -> tuple[int, dict[str, str], bytes]:
    """Status, header fields and the first body bytes read with the head."""
    data = b""
    while (end := data.find(b"\r\n\r\n")) < 0:
        if len(data) > _MAX_HEAD:
            raise Unsuitable("the answer's head is too long")
        more = await loop.sock_recv(sock, 65536)
        if not more:
            raise ConnectionResetError("the server closed the connection before answering")
        data += more
    status_line, *field_lines = data[:end].decode("latin-1").split("\r\n")
    version, _, rest = status_line.partition(" ")
    code = rest[:3]
    if not version.startswith("HTTP/1.") or not code.isdigit():
        raise Unsuitable(f"not an HTTP/1.x answer: {status_line[:40]!r}")
    fields: dict[str, str] = {}
    for line in field_lines:
        name, _, value = line.partition(":")
        fields[name.strip().lower()] = value.strip()
    return int(code), fields, data[end + 4 :]


async def _body(
    loop: asyncio.AbstractEventLoop, sock: socket.socket, first: bytes, size: int | None, timeout: float
) -> AsyncIterator[bytes]:
    """The body in pieces of up to ``PIECE`` bytes, up to ``size`` bytes, else until the
    server closes. ``SO_RCVLOWAT`` makes the socket readable only once a whole piece (or
    the end) is there, so each piece is one ``recv`` into a fresh ``bytes``: no copy in
    Python, one wake-up per MiB."""
    try:
        left = None if size is None else size - len(first)
        if first:
            yield first
        low = 0
        while left is None or left > 0:
            want = PIECE if left is None else min(PIECE, left)
            if want != low:
                low = want
                with contextlib.suppress(OSError):  # Linux; elsewhere the pieces are just smaller
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVLOWAT, low)
            async with asyncio.timeout(timeout):
                piece = await loop.sock_recv(sock, want)
            if not piece:
                if left is not None:
                    raise ConnectionResetError("the server closed the connection before the end of the body")
                return
            yield piece
            if left is not None:
                left -= len(piece)
    finally:  # the end of the body, an error, or the consumer closing the iterator
        sock.close()
