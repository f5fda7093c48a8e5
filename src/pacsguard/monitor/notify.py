"""Notifications: channels in one declared registry, and the worker that delivers them.

The delivery queue is the ``monitor_deliveries`` table: the monitor writes one row per
live alert and channel in the same transaction as the alert, and ``Dispatcher`` (run by
its own thread) sends what is due, retrying failures with exponential back-off. A slow
or broken channel therefore never delays detection, and every attempt and its error is
stored and visible (``pacsguard monitor status``).

Channels: ``dashboard`` (the stored alert is the delivery), ``webhook`` (JSON body,
``X-Pacsguard-Signature: sha256=<HMAC-SHA256 of the body>``), ``email`` (SMTP with
STARTTLS, aiosmtplib) and ``syslog`` (RFC 5424 over TCP with RFC 6587 octet counting).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import os
import socket
import ssl
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from typing import Any, Protocol

import httpx

from pacsguard.audit.syslog import frame
from pacsguard.clock import Clock, SystemClock
from pacsguard.mail import send_message
from pacsguard.monitor.store import MonitorStore

__all__ = [
    "NOTIFIERS",
    "SIGNATURE_HEADER",
    "ChannelHealth",
    "Dispatcher",
    "EmailNotifier",
    "Notifier",
    "SyslogNotifier",
    "WebhookNotifier",
    "channel_health",
    "sign_body",
]

SIGNATURE_HEADER = "X-Pacsguard-Signature"

NOTIFIERS: dict[str, str] = {
    "dashboard": "Stored with the alert for the dashboard; delivered as soon as the alert is stored.",
    "webhook": "POST of the alert as JSON, signed with HMAC-SHA256 in X-Pacsguard-Signature; retried with back-off.",
    "email": "A plain-text mail to the rule's owner (an address, a principal's e-mail, or every holder of a role)"
    " and notify.yaml's 'to', over SMTP with STARTTLS (aiosmtplib); retried.",
    "syslog": "An RFC 5424 message (JSON body) over TCP with octet-counting framing; retried.",
}


class Notifier(Protocol):
    """Sends one alert (its ``Alert.to_json`` form) on one channel; raises on failure."""

    channel: str

    def send(self, alert: Mapping[str, Any]) -> None: ...


def _body(alert: Mapping[str, Any]) -> bytes:
    return json.dumps(alert, sort_keys=True, separators=(",", ":")).encode()


def sign_body(secret: bytes, body: bytes) -> str:
    """The signature header value for ``body``: ``sha256=<hex HMAC-SHA256>``."""
    return "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()


@dataclass
class WebhookNotifier:
    """POSTs alerts to ``url``; raises ``httpx.HTTPError`` on a transport error or non-2xx."""

    url: str
    secret: bytes
    timeout: float = 5.0
    channel: str = "webhook"

    def send(self, alert: Mapping[str, Any]) -> None:
        body = _body(alert)
        headers = {"Content-Type": "application/json", SIGNATURE_HEADER: sign_body(self.secret, body)}
        response = httpx.post(self.url, content=body, headers=headers, timeout=self.timeout)
        response.raise_for_status()


@dataclass
class EmailNotifier:
    """Mails alerts over SMTP, upgrading with STARTTLS; raises ``aiosmtplib.SMTPException``
    or ``OSError``. ``tls`` verifies the server (give the site's CA). ``owners`` resolves
    the alert's owner to addresses (``monitor.owners.OwnerAddresses``); they get the mail
    together with ``recipients``."""

    host: str
    port: int
    sender: str
    recipients: tuple[str, ...]
    tls: ssl.SSLContext
    username: str | None = None
    password: str | None = None
    timeout: float = 10.0
    channel: str = "email"
    owners: Callable[[str], Sequence[str]] | None = None

    def addresses(self, alert: Mapping[str, Any]) -> list[str]:
        """The owner's addresses first, then ``recipients``, each once."""
        owned = list(self.owners(str(alert.get("owner", "")))) if self.owners is not None else []
        return list(dict.fromkeys([*owned, *self.recipients]))

    def send(self, alert: Mapping[str, Any]) -> None:
        message = EmailMessage()
        message["From"] = self.sender
        message["To"] = ", ".join(self.addresses(alert))
        message["Subject"] = f"[pacsguard {alert['severity']}] {alert['title']} ({alert['subject']})"
        message.set_content(json.dumps(alert, indent=2, sort_keys=True))
        asyncio.run(self._send(message))

    async def _send(self, message: EmailMessage) -> None:
        await send_message(
            message, host=self.host, port=self.port, tls=self.tls,
            username=self.username, password=self.password, timeout=self.timeout,
        )  # fmt: skip


@dataclass
class SyslogNotifier:
    """Sends alerts as RFC 5424 messages over TCP (TLS when ``tls`` is given); raises ``OSError``."""

    host: str
    port: int
    tls: ssl.SSLContext | None = None
    hostname: str = "pacsguard"
    app_name: str = "pacsguard-monitor"
    timeout: float = 5.0
    channel: str = "syslog"

    def send(self, alert: Mapping[str, Any]) -> None:
        with socket.create_connection((self.host, self.port), timeout=self.timeout) as raw:
            sock = self.tls.wrap_socket(raw, server_hostname=self.host) if self.tls is not None else raw
            sock.sendall(frame(alert_record(alert, self.hostname, self.app_name)))


_SEVERITY = {"low": 5, "medium": 4, "high": 3, "critical": 2}  # RFC 5424 notice .. critical


def alert_record(alert: Mapping[str, Any], hostname: str, app_name: str) -> bytes:
    """One RFC 5424 SYSLOG-MSG for an alert: facility 13 (log audit), JSON message."""
    pri = 13 * 8 + _SEVERITY.get(str(alert.get("severity")), 4)
    now = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    rule = str(alert.get("rule_id", "-"))[:32].replace(" ", "_") or "-"
    header = f"<{pri}>1 {now} {hostname} {app_name} {os.getpid()} {rule} -"
    return header.encode("ascii", "replace") + b" \xef\xbb\xbf" + _body(alert)


@dataclass(frozen=True, slots=True)
class ChannelHealth:
    """Deliveries of one channel: counts by state, how many pending ones are being retried
    (failed at least once), attempts that failed in all, the next retry and the newest error."""

    channel: str
    pending: int
    delivered: int
    failed: int
    last_error: str | None
    retrying: int = 0
    failed_attempts: int = 0
    next_retry: datetime | None = None


def channel_health(store: MonitorStore) -> list[ChannelHealth]:
    """Per channel: deliveries pending, delivered, failed; retries and the last error."""
    counts: dict[str, dict[str, int]] = {}
    errors: dict[str, str] = {}
    retries: dict[str, datetime] = {}
    for d in store.deliveries():
        c = counts.setdefault(d.channel, {})
        c[d.state] = c.get(d.state, 0) + 1
        missed = d.attempts - (d.state == "delivered")  # every attempt but a successful last one failed
        c["failed_attempts"] = c.get("failed_attempts", 0) + missed
        if d.state == "pending" and d.attempts:
            c["retrying"] = c.get("retrying", 0) + 1
            retries[d.channel] = min(retries.get(d.channel, d.next_at), d.next_at)
        if d.last_error:
            errors[d.channel] = d.last_error
    return [
        ChannelHealth(
            ch,
            c.get("pending", 0),
            c.get("delivered", 0),
            c.get("failed", 0),
            errors.get(ch),
            c.get("retrying", 0),
            c.get("failed_attempts", 0),
            retries.get(ch),
        )
        for ch, c in sorted(counts.items())
    ]


class Dispatcher:
    """Delivers due notifications; a failure is retried after ``backoff * 2**attempts``
    until ``max_attempts``, then the delivery is marked failed (and stays visible)."""

    def __init__(
        self,
        store: MonitorStore,
        notifiers: Mapping[str, Notifier],
        *,
        clock: Clock | None = None,
        backoff: timedelta = timedelta(seconds=2),
        max_attempts: int = 6,
    ) -> None:
        self._store = store
        self._notifiers = dict(notifiers)
        self._clock = clock or SystemClock()
        self._backoff = backoff
        self._max = max_attempts

    @property
    def channels(self) -> frozenset[str]:
        """The channels with a notifier (``dashboard`` always)."""
        return frozenset({"dashboard", *self._notifiers})

    def run_due(self) -> int:
        """Attempt every due delivery once; returns how many were delivered."""
        delivered = 0
        for d in self._store.due(self._clock.now()):
            stored = self._store.alert(d.alert_key)
            notifier = self._notifiers.get(d.channel)
            error: str | None = None
            if stored is None or notifier is None:
                error = f"no notifier configured for channel {d.channel!r}" if stored else "alert not found"
            else:
                try:
                    notifier.send(stored.alert.to_json())
                except Exception as exc:  # any failure of a channel is recorded and retried, never raised
                    error = f"{type(exc).__name__}: {exc}"[:1000]
            retry = None if d.attempts + 1 >= self._max else self._backoff * 2**d.attempts
            self._store.record_attempt(d.id, ok=error is None, at=self._clock.now(), error=error, retry_in=retry)
            delivered += error is None
        return delivered

    def run(self, stop: threading.Event, poll: float = 0.5, active: Callable[[], bool] | None = None) -> None:
        """Deliver until ``stop`` is set; while ``active()`` is false (a standby monitor)
        the leader delivers, so this one waits."""
        while not stop.is_set():
            if active is None or active():
                self.run_due()
            stop.wait(poll)
