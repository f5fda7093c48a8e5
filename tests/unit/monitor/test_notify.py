"""Notifications through real local receivers: an HTTP server, aiosmtpd with STARTTLS and
a TCP syslog listener. Failures are retried with back-off and stay visible."""

from __future__ import annotations

import hashlib
import hmac
import json
import socketserver
import ssl
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from email import message_from_bytes
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine as DbEngine

from pacsguard.audit import AuditLog
from pacsguard.clock import FakeClock
from pacsguard.domain.events import Actor, AuditEvent, ObjectRef
from pacsguard.monitor import Engine, load_rules
from pacsguard.monitor.notify import (
    NOTIFIERS,
    SIGNATURE_HEADER,
    Dispatcher,
    EmailNotifier,
    SyslogNotifier,
    WebhookNotifier,
    channel_health,
)
from pacsguard.monitor.service import MonitorOptions, MonitorService
from pacsguard.monitor.store import MonitorStore
from tests.postgres import free_port
from tests.smtp import Mailbox, smtp_server

SECRET = b"webhook-secret"


@dataclass
class Receiver:
    """A real HTTP server that answers ``status`` and keeps what it was sent."""

    status: int = 200
    bodies: list[tuple[bytes, str]] = field(default_factory=list)
    url: str = ""


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    got = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            got.bodies.append((body, self.headers[SIGNATURE_HEADER]))
            self.send_response(got.status)
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    got.url = f"http://127.0.0.1:{server.server_address[1]}/hook"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield got
    server.shutdown()
    server.server_close()


@pytest.fixture
def smtp(tmp_path: Path) -> Iterator[tuple[Mailbox, int, ssl.SSLContext]]:
    with smtp_server(tmp_path, Mailbox()) as box:
        yield box, box.port, box.client_context()


@pytest.fixture
def alerted(engine: DbEngine, clock: FakeClock) -> MonitorStore:
    """One live alert with webhook, email and syslog deliveries queued."""
    with AuditLog(engine, clock=clock) as log:
        log.emit(
            AuditEvent("principal.created", clock.now(), actor=Actor("admin"), objects=ObjectRef(target_principal="x"))
        )
    channels = frozenset({"dashboard", "webhook", "email", "syslog"})
    rules = [r.model_copy(update={"channels": sorted(channels)}) for r in load_rules().rules]
    svc = MonitorService(engine, lambda: Engine(rules), clock=clock, options=MonitorOptions(channels=channels))
    svc.step()
    return svc.store


def test_every_channel_is_documented() -> None:
    assert set(NOTIFIERS) == {"dashboard", "webhook", "email", "syslog"}
    assert all(len(doc) > 20 for doc in NOTIFIERS.values())


def test_webhook_is_signed_and_retried_with_backoff_until_delivered(
    alerted: MonitorStore, clock: FakeClock, receiver: Receiver
) -> None:
    receiver.status = 503
    dispatcher = Dispatcher(alerted, {"webhook": WebhookNotifier(receiver.url, SECRET)}, clock=clock)
    assert dispatcher.run_due() == 0
    [hook] = [d for d in alerted.deliveries() if d.channel == "webhook"]
    assert hook.attempts == 1
    assert hook.state == "pending"
    assert "503" in (hook.last_error or "")
    assert dispatcher.run_due() == 0  # not due yet: back-off
    assert len(receiver.bodies) == 1
    receiver.status = 200
    clock.advance(seconds=2)
    assert dispatcher.run_due() == 1
    body, signature = receiver.bodies[-1]
    assert signature == "sha256=" + hmac.new(SECRET, body, hashlib.sha256).hexdigest()
    assert json.loads(body)["rule_id"] == "admin.change"
    [hook] = [d for d in alerted.deliveries() if d.channel == "webhook"]
    assert (hook.state, hook.attempts) == ("delivered", 2)


def test_a_channel_that_never_answers_ends_failed_and_visible(alerted: MonitorStore, clock: FakeClock) -> None:
    dead = WebhookNotifier(f"http://127.0.0.1:{free_port()}/", SECRET, timeout=1)
    dispatcher = Dispatcher(alerted, {"webhook": dead}, clock=clock, max_attempts=3)
    for _ in range(3):
        dispatcher.run_due()
        clock.advance(minutes=5)
    health = {h.channel: h for h in channel_health(alerted)}
    assert health["webhook"].failed == 1
    assert health["webhook"].last_error
    assert health["dashboard"].delivered == 1
    assert health["email"].failed == 1  # no notifier configured: retried, then visible
    assert "no notifier configured" in (health["email"].last_error or "")


def test_email_goes_over_starttls_to_a_real_smtp_server(
    alerted: MonitorStore, clock: FakeClock, smtp: tuple[Mailbox, int, ssl.SSLContext]
) -> None:
    box, port, tls = smtp
    mail = EmailNotifier("127.0.0.1", port, "monitor@site.test", ("officer@site.test",), tls)
    assert Dispatcher(alerted, {"email": mail}, clock=clock).run_due() == 1
    [(_, content, encrypted)] = box.messages
    assert encrypted
    message = message_from_bytes(content)
    assert "admin.change" in str(message.get_payload())
    assert "[pacsguard high]" in str(message["Subject"])


def test_email_reaches_the_rule_owner_resolved_to_an_address(
    alerted: MonitorStore, clock: FakeClock, smtp: tuple[Mailbox, int, ssl.SSLContext]
) -> None:
    box, port, tls = smtp
    owners = {"security-officer": ["olga@site.test", "sven@site.test"]}
    mail = EmailNotifier("127.0.0.1", port, "monitor@site.test", ("soc@site.test",), tls, owners=owners.__getitem__)
    assert Dispatcher(alerted, {"email": mail}, clock=clock).run_due() == 1
    [(_, content, _)] = box.messages
    assert message_from_bytes(content)["To"] == "olga@site.test, sven@site.test, soc@site.test"


def test_syslog_sends_an_rfc5424_frame(alerted: MonitorStore, clock: FakeClock) -> None:
    got: list[bytes] = []

    class Handler(socketserver.BaseRequestHandler):
        def handle(self) -> None:
            got.append(self.request.recv(65536))

    with socketserver.TCPServer(("127.0.0.1", 0), Handler) as server:
        thread = threading.Thread(target=server.handle_request, daemon=True)
        thread.start()
        notifier = SyslogNotifier("127.0.0.1", server.server_address[1])
        assert Dispatcher(alerted, {"syslog": notifier}, clock=clock).run_due() == 1
        thread.join(10)
    length, record = got[0].split(b" ", 1)
    assert int(length) == len(record)
    assert record.startswith(b"<107>1 ")  # facility 13 (log audit), severity 3 (high)
    assert b"admin.change" in record
