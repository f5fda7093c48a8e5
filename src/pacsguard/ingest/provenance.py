"""Where an external event came from, kept in its ``detail`` under documented keys.

``AuditEvent`` has fixed top-level fields, so an ingested event carries its provenance in
``detail["ingest"]`` (``INGEST_KEY``):

- ``source``: the sending system: the client certificate's subject (CN), else the
  message's AuditSourceID / FHIR ``source.observer``, else the syslog HOSTNAME, else the
  peer address; for imports, ``--source`` or the file name;
- ``transport``: ``tls``, ``udp`` or ``import``;
- ``peer``: the peer address (``ip:port``) or the imported file;
- ``received_at``: when pacsguard took the message (ISO 8601, UTC); ``occurred_at`` of
  the event itself is the time the message states;
- ``format``: ``dicom``, ``fhir`` or ``jsonl``;
- ``message_id``: the message's own identity: FHIR ``id``, the original ``seq`` of a
  pacsguard JSONL export, or the syslog ``MSGID``/``PROCID`` when given;
- ``digest``: SHA-256 (hex) of the message as received (its payload bytes);
- ``syslog``: ``{hostname, app_name, procid, msgid}`` of the RFC 5424/3164 header.

The codes of the original message stay in ``detail["external"]`` (``mapping``).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime

from pacsguard.domain import AuditEvent
from pacsguard.domain.events import JsonValue

__all__ = ["INGEST_KEY", "Provenance", "attach", "content_key", "digest", "with_ingest"]

INGEST_KEY = "ingest"


@dataclass(frozen=True, slots=True)
class Provenance:
    """How one message reached pacsguard (see the module docstring for each key)."""

    source: str
    transport: str
    received_at: datetime
    format: str
    peer: str | None = None
    message_id: str | None = None
    digest: str | None = None
    syslog: dict[str, str] | None = None

    def to_json(self) -> dict[str, JsonValue]:
        moment = self.received_at if self.received_at.tzinfo else self.received_at.replace(tzinfo=UTC)
        body: dict[str, JsonValue] = {
            "source": self.source,
            "transport": self.transport,
            "received_at": moment.astimezone(UTC).isoformat(),
            "format": self.format,
            "peer": self.peer,
            "message_id": self.message_id,
            "digest": self.digest,
        }
        if self.syslog:
            body["syslog"] = dict(self.syslog)
        return body


def attach(event: AuditEvent, provenance: Provenance) -> AuditEvent:
    """``event`` with ``detail["ingest"]`` set to ``provenance`` (its ``seq`` cleared: the
    log numbers it anew); an earlier ``ingest`` entry moves to ``ingest_previous``."""
    return with_ingest(event, provenance.to_json())


def with_ingest(event: AuditEvent, ingest: dict[str, JsonValue]) -> AuditEvent:
    """``attach`` with the provenance already in its JSON form: a bulk import makes the
    part common to a whole batch once and adds each event's own keys to a copy."""
    detail = dict(event.detail)
    if INGEST_KEY in detail:
        detail["ingest_previous"] = detail.pop(INGEST_KEY)
    detail[INGEST_KEY] = ingest
    # Positional, not dataclasses.replace (which costs several times more per event).
    return AuditEvent(event.type, event.occurred_at, event.outcome, event.actor, event.objects, event.decision,
                      detail, None)  # fmt: skip


def digest(data: bytes) -> str:
    """SHA-256 of ``data``, hex."""
    return hashlib.sha256(data).hexdigest()


def content_key(source: str, canonical: bytes) -> str:
    """The idempotency key of an imported message: SHA-256 over the source name and the
    canonical bytes of the original (hex)."""
    return hashlib.sha256(source.encode("utf-8", "surrogatepass") + b"\x00" + canonical).hexdigest()
