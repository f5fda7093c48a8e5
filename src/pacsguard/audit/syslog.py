"""IHE ATNA Record Audit Event (ITI-20): RFC 5424 syslog over TLS (RFC 5425) to an ARR.

Each stored event becomes one RFC 5424 record: PRI facility 10 (security/authorization),
APP-NAME ``pacsguard``, MSGID the event type, structured data ``[pacsguard@32473 seq=..
type=..]`` and, as MSG, the DICOM PS3.15 A.5 ``AuditMessage`` XML (UTF-8 with BOM). Frames
use RFC 5425 octet counting (``MSG-LEN SP SYSLOG-MSG``).

``SyslogForwarder`` spools records on disk first (``syslog_spool.Spool``: bounded,
append-only, durable cursor of the last seq sent), then delivers them in order; when the
repository is unreachable it retries with exponential back-off. It reads events either
pushed to ``emit`` or pulled by sequence number from the audit log (``SeqEventSource``),
resuming after a restart from the durable cursor.

RFC 5425 has no application-level acknowledgement: a record counts as sent once TLS has
taken it. A connection that breaks just after a write can lose the records in flight;
the forwarder checks the connection before each batch to keep that window small. On a
new connection it also waits up to ``confirm_seconds`` after the first write, because
under TLS 1.3 a repository refuses a client certificate only after the handshake: a
refused connection must not advance the cursor.
"""

from __future__ import annotations

import contextlib
import os
import select
import socket
import ssl
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Protocol

from pacsguard.audit.export_dicom import AuditSource, to_dicom_xml, xml_safe
from pacsguard.audit.syslog_spool import Spool, SpoolEntry, SpoolStatus
from pacsguard.clock import Clock
from pacsguard.config import SyslogSettings
from pacsguard.domain import AuditEvent, Outcome
from pacsguard.errors import AuditTransportError

__all__ = [
    "DeliveryReport",
    "SeqEventSource",
    "SyslogForwarder",
    "SyslogSettings",
    "frame",
    "syslog_record",
]

FACILITY_AUTH = 10  # RFC 5424 6.2.1: security/authorization messages (ITI-20)
_SEVERITY = {Outcome.SUCCESS: 5, Outcome.DENIED: 4, Outcome.FAILURE: 4, Outcome.ERROR: 3}
BOM = b"\xef\xbb\xbf"


class SeqEventSource(Protocol):
    """The audit log, read by sequence number: events with ``seq > after``, in order."""

    def events_after(self, after: int, limit: int) -> Sequence[AuditEvent]: ...


@dataclass(frozen=True, slots=True)
class DeliveryReport:
    """What one delivery attempt did."""

    sent: int
    pending: int
    error: str | None = None
    next_attempt: datetime | None = None


def _ascii_field(text: str, limit: int) -> str:
    cleaned = "".join(ch if "!" <= ch <= "~" else "_" for ch in text)[:limit]
    return cleaned or "-"


def _sd_value(text: str) -> str:
    return xml_safe(text).replace("\\", "\\\\").replace('"', '\\"').replace("]", "\\]")


def syslog_record(
    event: AuditEvent,
    *,
    hostname: str,
    app_name: str = "pacsguard",
    sd_id: str = "pacsguard@32473",
    source: AuditSource | None = None,
    procid: str | None = None,
    msgid: str | None = None,
) -> bytes:
    """``event`` as one RFC 5424 SYSLOG-MSG (no framing). Never raises on odd values."""
    pri = FACILITY_AUTH * 8 + _SEVERITY[event.outcome]
    moment = event.occurred_at if event.occurred_at.tzinfo else event.occurred_at.replace(tzinfo=UTC)
    timestamp = moment.astimezone(UTC).isoformat().replace("+00:00", "Z")
    params = f'type="{_sd_value(event.type)}"'
    if event.seq is not None:
        params = f'seq="{event.seq}" ' + params
    header = " ".join(
        (
            f"<{pri}>1",
            timestamp,
            _ascii_field(hostname, 255),
            _ascii_field(app_name, 48),
            _ascii_field(procid or str(os.getpid()), 128),
            _ascii_field(msgid or event.type, 32),
            f"[{sd_id} {params}]",
        )
    )
    return header.encode("utf-8") + b" " + BOM + to_dicom_xml(event, source)


def frame(record: bytes) -> bytes:
    """RFC 5425 octet-counting frame: ``MSG-LEN SP SYSLOG-MSG``."""
    return str(len(record)).encode("ascii") + b" " + record


Connector = Callable[[], socket.socket]


class SyslogForwarder:
    """Spools records and delivers them in order over TLS, resuming from a durable cursor."""

    def __init__(
        self,
        settings: SyslogSettings,
        *,
        site: Path,
        clock: Clock,
        source: AuditSource | None = None,
        connector: Connector | None = None,
    ) -> None:
        """Open the spool; raises ``AuditTransportError`` if the spool or TLS files are unusable."""
        self.settings = settings
        self.clock = clock
        self.source = source or AuditSource()
        self.hostname = settings.hostname or socket.gethostname()
        self.spool = Spool(_under(site, settings.spool_dir), settings.spool_max_bytes)
        self._connect = connector or self._tls_connector(site)
        self._sock: socket.socket | None = None
        self._failures = 0
        self._not_before: datetime | None = None
        self.last_error: str | None = None
        self._spool_lock = threading.Lock()  # the spool's files and counters
        self._send_lock = threading.Lock()  # one delivery (and one connection) at a time

    def _tls_connector(self, site: Path) -> Connector:
        s = self.settings
        try:
            context = ssl.create_default_context(cafile=str(_under(site, s.ca_file)))
            if s.client_cert:
                key = str(_under(site, s.client_key)) if s.client_key else None
                context.load_cert_chain(str(_under(site, s.client_cert)), key)
        except (OSError, ssl.SSLError) as exc:
            raise AuditTransportError(f"[audit.syslog] TLS files unusable: {exc}; check ca_file/client_cert") from exc

        def connect() -> socket.socket:
            raw = socket.create_connection((s.host, s.port), timeout=s.connect_timeout)
            try:
                return context.wrap_socket(raw, server_hostname=s.server_name or s.host)
            except BaseException:
                raw.close()
                raise

        return connect

    # -- taking events ----------------------------------------------------------------

    def emit(self, event: AuditEvent) -> None:
        """Spool a stored event (``seq`` set); replays of spooled seqs are ignored.

        At the spool's cap the oldest undelivered records are dropped (and counted).
        Raises ``AuditTransportError`` if the event has no seq or cannot be spooled.
        """
        framed = self._framed(event)
        with self._spool_lock:
            self.spool.append(self._seq(event), framed)

    def _seq(self, event: AuditEvent) -> int:
        if event.seq is None:
            raise AuditTransportError(f"event {event.type!r} has no seq: forward events after the log stored them")
        return event.seq

    def _framed(self, event: AuditEvent) -> bytes:
        s = self.settings
        return frame(
            syslog_record(event, hostname=self.hostname, app_name=s.app_name, sd_id=s.sd_id, source=self.source)
        )

    def pull(self, log: SeqEventSource, limit: int = 1000) -> int:
        """Spool the log's events after the last spooled seq; returns how many were taken.

        Pulling never drops anything: when the spool is full it stops, and the events
        stay in the log until delivery makes room.
        """
        taken = 0
        for event in log.events_after(self.spool.last_spooled, limit):
            framed = self._framed(event)
            with self._spool_lock:
                if not self.spool.has_room(len(framed)):
                    break
                self.spool.append(self._seq(event), framed)
            taken += 1
        return taken

    # -- delivering -------------------------------------------------------------------

    def deliver(self) -> DeliveryReport:
        """Send what is pending, oldest first, unless backing off. Never raises on network errors.

        Only one delivery runs at a time; ``emit`` is never held up by the network.
        """
        with self._send_lock:
            now = self.clock.now()
            if self._not_before is not None and now < self._not_before:
                return DeliveryReport(0, self._pending_count(), self.last_error, self._not_before)
            sent = 0
            try:
                while batch := self._next_batch():
                    sock, fresh = self._connection()
                    sock.sendall(b"".join(e.frame for e in batch))
                    if fresh and not _confirmed(sock, self.settings.confirm_seconds):
                        raise AuditTransportError(
                            "the repository closed the connection after the handshake "
                            "(does it accept our client certificate?)"
                        )
                    with self._spool_lock:
                        self.spool.mark_sent(batch[-1].seq)
                    sent += len(batch)
            except (OSError, AuditTransportError) as exc:
                return self._failed(exc, sent, now)
            self._failures, self._not_before, self.last_error = 0, None, None
            return DeliveryReport(sent, 0)

    def _next_batch(self) -> list[SpoolEntry]:
        with self._spool_lock:
            return self.spool.pending(self.settings.batch)

    def _pending_count(self) -> int:
        with self._spool_lock:
            return len(self.spool.pending())

    def _failed(self, exc: Exception, sent: int, now: datetime) -> DeliveryReport:
        self.close()
        delay = min(self.settings.retry_initial * 2**self._failures, self.settings.retry_max)
        self._failures += 1
        self._not_before = now + timedelta(seconds=delay)
        self.last_error = f"{type(exc).__name__}: {exc}"
        return DeliveryReport(sent, self._pending_count(), self.last_error, self._not_before)

    def _connection(self) -> tuple[socket.socket, bool]:
        """The open connection, or a new one (then ``True``)."""
        if self._sock is not None and not _alive(self._sock):
            self.close()
        if self._sock is not None:
            return self._sock, False
        self._sock = self._connect()
        return self._sock, True

    def run_once(self, log: SeqEventSource | None = None) -> float:
        """Pull (if given a log) and deliver once; returns seconds to wait before the next round."""
        if log is not None:
            self.pull(log)
        report = self.deliver()
        if report.next_attempt is None:
            return 1.0
        return max((report.next_attempt - self.clock.now()).total_seconds(), 0.0)

    def run(self, stop: threading.Event, log: SeqEventSource | None = None) -> None:
        """Forward until ``stop`` is set (a background thread's body)."""
        while not stop.is_set():
            stop.wait(self.run_once(log))
        self.close()

    def status(self) -> SpoolStatus:
        """Spool counts: last seq sent, pending, dropped."""
        with self._spool_lock:
            return self.spool.status()

    def close(self) -> None:
        """Close the connection (pending records stay spooled)."""
        sock, self._sock = self._sock, None
        if sock is None:
            return
        try:
            if isinstance(sock, ssl.SSLSocket):
                sock.settimeout(1.0)
                sock.unwrap()  # TLS close_notify, so the repository sees a clean end
        except (OSError, ValueError):
            pass  # the peer is gone already; closing is all that is left
        finally:
            sock.close()


def _confirmed(sock: socket.socket, seconds: float) -> bool:
    """After the first write on a new connection: did the peer keep it open?

    With TLS 1.3 a server checks the client certificate after the client has finished
    the handshake, so a refusal arrives only after our first write. Waiting up to
    ``seconds`` for it keeps a refused connection from counting records as sent.
    """
    readable, _, _ = select.select([sock], [], [], seconds)
    return not readable or _alive(sock)


def _alive(sock: socket.socket) -> bool:
    """False when the peer closed the connection (readable with nothing to read)."""
    timeout = sock.gettimeout()
    try:
        readable, _, _ = select.select([sock], [], [], 0)
        if not readable:
            return True
        # Readable may mean only TLS housekeeping (a session ticket): never block on it.
        sock.settimeout(0)
        return bool(sock.recv(1))
    except ssl.SSLWantReadError:
        return True
    except (OSError, ValueError):
        return False
    finally:
        with contextlib.suppress(OSError):
            sock.settimeout(timeout)


def _under(site: Path, relative: str) -> Path:
    p = Path(relative)
    return p if p.is_absolute() else site / p
