"""A real SMTP server for the tests: aiosmtpd on a free loopback port, STARTTLS required,
with a self-signed certificate for 127.0.0.1 made here. ``smtp_server(directory, Mailbox())``
runs it and yields the ``Mailbox`` that records what arrived."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import ipaddress
import re
import ssl
from collections.abc import Iterator
from dataclasses import dataclass, field
from email import message_from_bytes
from pathlib import Path
from typing import AnyStr, TypeVar

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.postgres import free_port


@dataclass
class Mailbox:
    """What the server received: (recipients, message bytes, over TLS?), and how a client
    reaches it (``port``; ``ca_file`` to trust its certificate)."""

    port: int = 0
    ca_file: str = ""
    messages: list[tuple[list[str], bytes, bool]] = field(default_factory=list)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        content = envelope.content if isinstance(envelope.content, bytes) else str(envelope.content).encode()
        self.messages.append((list(envelope.rcpt_tos), content, session.ssl is not None))
        return "250 OK"

    def client_context(self) -> ssl.SSLContext:
        """A client TLS context that trusts the server's certificate."""
        return ssl.create_default_context(cafile=self.ca_file)

    def last_code(self) -> str:
        """The six-digit code in the body of the last message."""
        body = message_from_bytes(self.messages[-1][1]).get_payload(decode=True)
        assert isinstance(body, bytes)
        match = re.search(rb"\b(\d{6})\b", body)
        assert match is not None, body
        return match.group(1).decode()


M = TypeVar("M", bound=Mailbox)


class _SlowToClose(SMTP):
    """A relay that answers QUIT, then waits half a second before closing (a busy one)."""

    async def push(self, status: AnyStr) -> None:
        await super().push(status)
        if str(status).startswith("221"):
            await asyncio.sleep(0.5)


class _SlowController(Controller):
    def factory(self) -> SMTP:
        return _SlowToClose(self.handler, **self.SMTP_kwargs)


@contextlib.contextmanager
def smtp_server(directory: Path, box: M, *, slow_to_close: bool = False) -> Iterator[M]:
    """Serve ``box`` (a ``Mailbox``, or a subclass with helpers of its own) until the block
    ends; ``slow_to_close`` keeps each connection open for half a second after QUIT."""
    cert, key = _certificate(directory)
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_tls.load_cert_chain(cert, key)
    box.port, box.ca_file = free_port(), str(cert)
    controller = (_SlowController if slow_to_close else Controller)(
        box, hostname="127.0.0.1", port=box.port, tls_context=server_tls, require_starttls=True
    )
    controller.start()
    try:
        yield box
    finally:
        controller.stop()


def _certificate(directory: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "smtp.pem", directory / "smtp.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_path, key_path
