"""IHE ITI-20 transports: syslog over TLS (RFC 5425) and over UDP (RFC 5426).

``SyslogServer`` listens on loopback or any address given. TLS connections are accepted
as TCP (reading paused) and upgraded (``loop.start_tls``) so that a refused handshake (no client certificate
when one is required, one not from the site CA, not TLS at all) is counted and closes
only that connection. Each connection reads octet-counted frames (``Framer``) and hands
them to the ``Receiver``; while the receiver's queue is full the connection is not read
(TCP back-pressure). A frame length that lies closes that connection after what was
read is quarantined; the listener and every other connection go on.

``ReceiverThread`` runs receiver and server on an event loop of their own, in a thread:
``pacsguard serve`` starts it beside uvicorn (see ``cli/serve.py``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pacsguard.errors import IngestError
from pacsguard.ingest.framing import Bad, Frame, Framer
from pacsguard.ingest.receiver import Arrival, Receiver
from pacsguard.ingest.store import Quarantined

__all__ = ["ReceiverThread", "SyslogServer", "peer_subject", "server_tls_context"]

log = logging.getLogger(__name__)

_READ = 256 * 1024
_HANDSHAKE_SECONDS = 30.0


def server_tls_context(cert: Path, key: Path, ca: Path | None, *, require_client_cert: bool) -> ssl.SSLContext:
    """A TLS 1.2+ server context; with ``ca``, client certificates are checked against it
    (required when ``require_client_cert``). Raises ``IngestError`` for unusable files."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(cert, key)
        if ca is not None:
            context.load_verify_locations(cafile=str(ca))
            context.verify_mode = ssl.CERT_REQUIRED if require_client_cert else ssl.CERT_OPTIONAL
        elif require_client_cert:
            raise IngestError("a client certificate is required but no CA file is configured")
    except (OSError, ssl.SSLError) as exc:
        raise IngestError(f"receiver TLS files unusable: {exc}; check [pki] server_cert/server_key/ca_cert") from exc
    return context


def peer_subject(peercert: Any) -> str | None:
    """The subject of a verified peer certificate (``getpeercert()``) as ``CN=..,OU=..``."""
    if not isinstance(peercert, dict):
        return None
    names = {"commonName": "CN", "organizationalUnitName": "OU", "organizationName": "O", "countryName": "C"}
    parts = [f"{names.get(k, k)}={v}" for rdn in peercert.get("subject", ()) for k, v in rdn]
    return ",".join(parts) or None


class _Datagrams(asyncio.DatagramProtocol):
    def __init__(self, server: SyslogServer) -> None:
        self.server = server

    def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        self.server.datagram(data, f"{addr[0]}:{addr[1]}")


class _Accepting(asyncio.Protocol):
    """A new TCP connection: reading paused at once, so no byte of the TLS handshake is
    consumed before ``start_tls`` takes the connection over."""

    def __init__(self, server: SyslogServer) -> None:
        self.server = server

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        transport.pause_reading()
        self.server._accepted(transport)


class SyslogServer:
    """TLS and UDP listeners feeding one ``Receiver``; ports 0 pick free ones."""

    def __init__(
        self,
        receiver: Receiver,
        *,
        host: str = "127.0.0.1",
        tls_port: int | None = None,
        udp_port: int | None = None,
        tls_context: ssl.SSLContext | None = None,
    ) -> None:
        if tls_port is not None and tls_context is None:
            raise IngestError("a TLS port needs a TLS context (server certificate and key)")
        self.receiver = receiver
        self.host = host
        self._tls_port, self._udp_port = tls_port, udp_port
        self._context = tls_context
        self._tcp: asyncio.Server | None = None
        self._udp: asyncio.DatagramTransport | None = None
        self._connections: set[asyncio.Task[None]] = set()
        self.tls_address: tuple[str, int] | None = None
        self.udp_address: tuple[str, int] | None = None

    async def start(self) -> None:
        """Start the receiver (its parsing processes, its writer) and the listeners; raises
        ``OSError`` if a port is taken."""
        await self.receiver.open()
        loop = asyncio.get_running_loop()
        if self._tls_port is not None:
            self._tcp = await loop.create_server(lambda: _Accepting(self), self.host, self._tls_port)
            self.tls_address = self._tcp.sockets[0].getsockname()[:2]
        if self._udp_port is not None:
            transport, _ = await loop.create_datagram_endpoint(
                lambda: _Datagrams(self), local_addr=(self.host, self._udp_port)
            )
            self._udp = transport
            self.udp_address = transport.get_extra_info("sockname")[:2]

    async def stop(self) -> None:
        """Stop listening, end the connections, then write what is queued."""
        if self._tcp is not None:
            self._tcp.close()
        if self._udp is not None:
            self._udp.close()
        for task in list(self._connections):
            task.cancel()
        for task in list(self._connections):
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._tcp is not None:
            await self._tcp.wait_closed()
        await self.receiver.stop()

    # -- UDP ---------------------------------------------------------------------------

    def datagram(self, data: bytes, peer: str) -> None:
        """One RFC 5426 datagram: one message, never waited for (dropped when full)."""
        r = self.receiver
        if len(data) <= r.options.max_message_bytes:
            r.take_nowait(r.arrival(data, "udp", peer))
            return
        reason = f"datagram of {len(data)} bytes is over the limit of {r.options.max_message_bytes}"
        r.take_nowait(r.rejected(data[: r.store.keep_bytes], len(data), "oversized", reason, "udp", peer, None))

    # -- TLS ---------------------------------------------------------------------------

    def _accepted(self, transport: asyncio.BaseTransport) -> None:
        task = asyncio.get_running_loop().create_task(self._connection(transport))
        self._connections.add(task)
        task.add_done_callback(self._connections.discard)

    async def _connection(self, transport: asyncio.BaseTransport) -> None:
        loop = asyncio.get_running_loop()
        name = transport.get_extra_info("peername")
        peer = f"{name[0]}:{name[1]}" if isinstance(name, tuple) and len(name) >= 2 else None
        reader = asyncio.StreamReader(limit=_READ, loop=loop)
        protocol = asyncio.StreamReaderProtocol(reader, loop=loop)
        assert self._context is not None
        try:
            tls = await loop.start_tls(
                transport,  # type: ignore[arg-type]  # a socket transport, paused since it was accepted
                protocol,
                self._context,
                server_side=True,
                ssl_handshake_timeout=_HANDSHAKE_SECONDS,
            )
        except (OSError, TimeoutError, ConnectionError) as exc:  # ssl.SSLError is an OSError
            self.receiver.counters.tls_failures += 1
            log.info("TLS handshake with %s refused: %s", peer, exc or type(exc).__name__)
            transport.close()
            return
        if tls is None:
            transport.close()
            return
        protocol.connection_made(tls)
        writer = asyncio.StreamWriter(tls, protocol, reader, loop)
        self.receiver.counters.connections += 1
        try:
            await self._read_frames(reader, peer, peer_subject(tls.get_extra_info("peercert")))
        except (OSError, ConnectionError) as exc:
            log.info("connection from %s ended: %s", peer, exc)
        finally:
            writer.close()

    async def _read_frames(self, reader: asyncio.StreamReader, peer: str | None, subject: str | None) -> None:
        r = self.receiver
        framer = Framer(r.options.max_message_bytes, r.store.keep_bytes)
        while True:
            data = await reader.read(_READ)
            if data:
                items = [self._item(item, peer, subject) for item in framer.feed(data)]
            else:
                end = framer.end()
                items = [self._item(end, peer, subject)] if end else []
            await r.take_all(items)
            if not data or framer.broken:
                return

    def _item(self, item: Frame | Bad, peer: str | None, subject: str | None) -> Arrival | Quarantined:
        r = self.receiver
        if isinstance(item, Frame):
            return r.arrival(item.data, "tls", peer, subject)
        if item.fatal:
            r.counters.closed_lying += 1
        return r.rejected(item.raw, item.size, item.reason, item.message, "tls", peer, subject)


class ReceiverThread:
    """A ``SyslogServer`` (and its receiver) on an event loop in a thread of its own."""

    def __init__(self, make: Callable[[], SyslogServer]) -> None:
        """``make`` builds the server inside the thread's loop (its queue belongs there)."""
        self._make = make
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._error: BaseException | None = None
        self.server: SyslogServer | None = None
        self._thread = threading.Thread(target=self._main, name="atna-receiver", daemon=True)

    def start(self, timeout: float = 30.0) -> None:
        """Start and wait until listening; raises ``IngestError`` if it could not start."""
        self._thread.start()
        self._ready.wait(timeout)
        if self._error is not None:
            raise IngestError(f"the ATNA receiver did not start: {self._error}") from self._error
        if self.server is None:
            raise IngestError("the ATNA receiver did not start in time")

    def stats(self) -> dict[str, int]:
        """The receiver's counters (empty before it started)."""
        return self.server.receiver.stats() if self.server is not None else {}

    def stop(self) -> None:
        """Stop listening, write what is queued, end the thread."""
        if self._loop is not None and self._stop is not None and self._thread.is_alive():
            with contextlib.suppress(RuntimeError):  # the loop ended already
                self._loop.call_soon_threadsafe(self._stop.set)
        if self._thread.ident is not None:
            self._thread.join()

    def _main(self) -> None:
        asyncio.run(self._serve())

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        try:
            server = self._make()
            await server.start()
        except (OSError, IngestError) as exc:
            self._error = exc
            self._ready.set()
            return
        self.server = server
        self._ready.set()
        try:
            await self._stop.wait()
        finally:
            await server.stop()
