"""Real TLS on 127.0.0.1 for tests: one connection, a server thread and a client.

No timed assertions: the socket timeouts only keep a broken test from hanging.
"""

from __future__ import annotations

import socket
import ssl
import threading
from dataclasses import dataclass
from pathlib import Path

from pacsguard.pki import IssuedCertificate

_GREETING = b"hello"
_SAFETY_TIMEOUT = 20.0


@dataclass
class Handshake:
    """What each side saw of one TLS connection."""

    server_error: BaseException | None = None
    client_error: BaseException | None = None
    peer_certificate: bytes | None = None  # DER, as the server received it
    received: bytes = b""

    @property
    def succeeded(self) -> bool:
        return self.server_error is None and self.client_error is None and self.received == _GREETING


def write_pair(directory: Path, name: str, issued: IssuedCertificate) -> tuple[Path, Path]:
    """Write ``issued`` as ``name.pem`` and ``name-key.pem``; returns both paths."""
    cert, key = directory / f"{name}.pem", directory / f"{name}-key.pem"
    issued.write(cert, key)
    return cert, key


def server_context(cert: Path, key: Path, client_ca_pem: bytes | None = None) -> ssl.SSLContext:
    """A TLS 1.2+ server context; with ``client_ca_pem`` it requires a client certificate."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(cert, key)
    if client_ca_pem is not None:
        context.verify_mode = ssl.CERT_REQUIRED
        context.load_verify_locations(cadata=client_ca_pem.decode())
    return context


def client_context(ca_pem: bytes, cert: Path | None = None, key: Path | None = None) -> ssl.SSLContext:
    """A client context trusting only ``ca_pem``, optionally presenting a certificate."""
    context = ssl.create_default_context(cadata=ca_pem.decode())
    if cert is not None:
        context.load_cert_chain(cert, key)
    return context


def handshake(server: ssl.SSLContext, client: ssl.SSLContext, server_hostname: str = "localhost") -> Handshake:
    """Connect once over loopback; the server greets a client it accepted."""
    result = Handshake()
    with socket.create_server(("127.0.0.1", 0)) as listener:
        listener.settimeout(_SAFETY_TIMEOUT)
        thread = threading.Thread(target=_serve_once, args=(listener, server, result))
        thread.start()
        try:
            with (
                socket.create_connection(listener.getsockname()[:2], timeout=_SAFETY_TIMEOUT) as raw,
                client.wrap_socket(raw, server_hostname=server_hostname) as tls,
            ):
                # With TLS 1.3 the client learns that its certificate was refused only here.
                result.received = tls.recv(len(_GREETING))
        except OSError as exc:  # ssl.SSLError is an OSError
            result.client_error = exc
        finally:
            thread.join()
    return result


def _serve_once(listener: socket.socket, context: ssl.SSLContext, result: Handshake) -> None:
    try:
        conn, _ = listener.accept()
    except OSError as exc:
        result.server_error = exc
        return
    with conn:
        conn.settimeout(_SAFETY_TIMEOUT)
        try:
            with context.wrap_socket(conn, server_side=True) as tls:
                result.peer_certificate = tls.getpeercert(binary_form=True)
                tls.sendall(_GREETING)
        except OSError as exc:
            result.server_error = exc
