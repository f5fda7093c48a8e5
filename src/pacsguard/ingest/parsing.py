"""One arrival (a syslog message as it came off the network) into its event: pure.

Used by the receiver in its own process (without a ``ParserPool``) and by
its parsing processes (``worker``); both give the same event for the same arrival.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from pacsguard.domain import AuditEvent
from pacsguard.errors import MessageRejected
from pacsguard.ingest.mapping import to_event
from pacsguard.ingest.provenance import Provenance, attach, digest
from pacsguard.ingest.store import Quarantined
from pacsguard.ingest.syslog_record import SyslogRecord, parse_payload, parse_syslog

__all__ = ["Arrival", "event_for"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Arrival:
    """One message as it came off the network, not parsed yet."""

    data: bytes
    transport: str  # tls or udp
    peer: str | None
    cert_source: str | None  # the verified client certificate's subject
    received_at: datetime

    def quarantined(self, reason: str, message: str) -> Quarantined:
        """Its quarantine entry: rejected for ``reason`` (a stable code), ``message`` for people."""
        data = self.data
        return Quarantined(self.received_at, self.transport, reason, message, len(data), data, self.peer,
                           self.cert_source or self.peer)  # fmt: skip


def event_for(arrival: Arrival) -> AuditEvent | Quarantined:
    """The event for one syslog message, or its quarantine entry if it is unusable."""
    transport, peer, cert_source = arrival.transport, arrival.peer, arrival.cert_source
    try:
        record = parse_syslog(arrival.data)
        message = parse_payload(record.payload)
        event = to_event(message)
    except MessageRejected as exc:
        return arrival.quarantined(exc.reason, str(exc))
    except Exception as exc:  # a parser bug must not stop the receiver: quarantine the message
        log.exception("unexpected error parsing a message from %s", peer)
        return arrival.quarantined("internal-error", f"internal error: {type(exc).__name__}")
    provenance = Provenance(
        source=_source(cert_source, message.audit_source_id, record, peer),
        transport=transport,
        received_at=arrival.received_at,
        format=message.format,
        peer=peer,
        message_id=message.message_id or _syslog_id(record),
        digest=digest(record.payload),
        syslog=record.header() or None,
    )
    return attach(event, provenance)


def _syslog_id(record: SyslogRecord) -> str | None:
    parts = [p for p in (record.msgid, record.procid) if p]
    return "/".join(parts) or None


def _source(cert: str | None, audit_source: str | None, record: SyslogRecord, peer: str | None) -> str:
    return cert or audit_source or record.hostname or peer or "unknown"
