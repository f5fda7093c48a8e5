"""Fixtures for the ingest tests: an SQLite site database with its audit log, a site CA
with server and client certificates, and a running receiver (its own thread and loop)."""

from __future__ import annotations

import shutil
import socket
import ssl
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine

from pacsguard.audit import AuditLog
from pacsguard.audit.reader import LogReader
from pacsguard.clock import FakeClock
from pacsguard.domain import AuditEvent
from pacsguard.ingest import IngestStore, Receiver, ReceiverOptions, ReceiverThread, SyslogServer
from pacsguard.ingest.receiver import AuditAppender
from pacsguard.ingest.syslog_server import server_tls_context
from pacsguard.ingest.worker import ParserPool
from pacsguard.pki import create_ca, issue_client, issue_server
from pacsguard.storage import make_engine
from tests.tls import write_pair

DEADLINE = 30.0  # an upper bound for waits, never a sleep that asserts anything


def wait_for(condition: Callable[[], bool], what: str) -> None:
    """Wait until ``condition()`` holds (bounded); fail naming ``what`` if it never does."""
    end = time.monotonic() + DEADLINE
    while time.monotonic() < end:
        if condition():
            return
        time.sleep(0.01)
    assert condition(), f"timed out waiting for {what}"


@pytest.fixture
def sqlite_engine(tmp_path: Path, migrated_template: Callable[..., str]) -> Iterator[Engine]:
    path = tmp_path / "site.db"
    shutil.copyfile(migrated_template("sqlite"), path)
    engine = make_engine(f"sqlite:///{path}")
    yield engine
    engine.dispose()


@pytest.fixture
def audit_log(sqlite_engine: Engine, clock: FakeClock) -> Iterator[AuditLog]:
    log = AuditLog(sqlite_engine, clock=clock)
    yield log
    log.close()


def logged(engine: Engine) -> list[AuditEvent]:
    return list(LogReader(engine).events_after(-1, 10_000))


@dataclass
class Pki:
    ca_pem: bytes
    ca: Path
    server: tuple[Path, Path]
    client: tuple[Path, Path]
    stranger: tuple[Path, Path]  # a client certificate from another CA


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    d = tmp_path_factory.mktemp("ingest-pki")
    now = datetime.now(UTC)
    ca = create_ca(now)
    other = create_ca(now, common_name="someone else's CA")
    (d / "ca.pem").write_bytes(ca.cert_pem())
    return Pki(
        ca.cert_pem(),
        d / "ca.pem",
        write_pair(d, "server", issue_server(ca, now)),
        write_pair(d, "client", issue_client(ca, now, "modality7", ae_title="CT7")),
        write_pair(d, "stranger", issue_client(other, now, "intruder")),
    )


@dataclass
class Running:
    thread: ReceiverThread
    engine: Engine

    @property
    def server(self) -> SyslogServer:
        assert self.thread.server is not None
        return self.thread.server

    @property
    def tls(self) -> tuple[str, int]:
        assert self.server.tls_address is not None
        return self.server.tls_address

    @property
    def udp(self) -> tuple[str, int]:
        assert self.server.udp_address is not None
        return self.server.udp_address

    def stats(self) -> dict[str, int]:
        return self.thread.stats()

    @property
    def parser(self) -> ParserPool:
        assert self.server.receiver.parser is not None
        return self.server.receiver.parser

    def wait(self, key: str, at_least: int) -> dict[str, int]:
        wait_for(lambda: self.stats()[key] >= at_least, f"{key} >= {at_least} (now {self.stats()})")
        return self.stats()


@pytest.fixture
def start_receiver(
    pki: Pki, sqlite_engine: Engine, audit_log: AuditLog, clock: FakeClock
) -> Iterator[Callable[..., Running]]:
    """A factory: a receiver on TLS and UDP (free ports) writing to the test's log; with
    ``processes``, parsing in that many parsing processes (``parse_timeout``: seconds a
    batch may take before they count as hung)."""
    started: list[ReceiverThread] = []

    def start(
        log: AuditAppender | None = None, require_client_cert: bool = True, processes: int = 0, **options: Any
    ) -> Running:
        context = server_tls_context(*pki.server, pki.ca, require_client_cert=require_client_cert)
        store = IngestStore(sqlite_engine, keep_rows=options.pop("keep_rows", 100))

        def make() -> SyslogServer:
            timeout = options.pop("parse_timeout", 60.0)
            parser = ParserPool(audit_log.options.limits, processes, timeout=timeout) if processes else None
            receiver = Receiver(log or audit_log, store, clock, ReceiverOptions(**options), parser)
            return SyslogServer(receiver, tls_port=0, udp_port=0, tls_context=context)

        thread = ReceiverThread(make)
        thread.start()
        started.append(thread)
        return Running(thread, sqlite_engine)

    yield start
    for thread in started:
        thread.stop()


def client_context(pki: Pki, cert: tuple[Path, Path] | None) -> ssl.SSLContext:
    context = ssl.create_default_context(cadata=pki.ca_pem.decode())
    if cert is not None:
        context.load_cert_chain(*cert)
    return context


def send_tls(pki: Pki, address: tuple[str, int], data: bytes, cert: tuple[Path, Path] | None = None) -> None:
    """``send_over_tls`` trusting ``pki``'s CA, with ``cert`` as the client certificate."""
    send_over_tls(client_context(pki, cert), address, data)


def send_over_tls(context: ssl.SSLContext, address: tuple[str, int], data: bytes) -> None:
    """Connect, send ``data`` and close with a TLS close_notify; errors after the data
    was handed over (the receiver closed first, or refused us) are left to the caller's
    checks of what the receiver counted."""
    with socket.create_connection(address, timeout=DEADLINE) as raw:
        try:
            with context.wrap_socket(raw, server_hostname="localhost") as tls:
                tls.sendall(data)
                tls.unwrap()
        except OSError:
            pass


def send_udp(address: tuple[str, int], data: bytes) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.sendto(data, address)
