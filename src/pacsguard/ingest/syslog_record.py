"""One syslog message (RFC 5424, or RFC 3164 from older devices) and its audit payload.

RFC 5424: ``<PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID STRUCTURED-DATA [SP MSG]``;
the MSG may start with a UTF-8 BOM. RFC 3164 (BSD): ``<PRI>Mmm dd hh:mm:ss HOSTNAME
TAG: MSG``; its payload is found where the XML or JSON starts. A message without any
syslog header (some devices send the bare XML over UDP) is taken as payload only.

The payload is a DICOM PS3.15 A.5 ``AuditMessage`` (starts with ``<``) or a FHIR
AuditEvent (starts with ``{``). Everything here is pure: bytes in, values out.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from pacsguard.errors import MessageRejected
from pacsguard.ingest.dicom_xml import parse_dicom_xml
from pacsguard.ingest.fhir_json import parse_fhir_json
from pacsguard.ingest.message import Message

__all__ = ["SyslogRecord", "parse_payload", "parse_syslog"]

_BOM = b"\xef\xbb\xbf"
_PRI = re.compile(rb"^<(\d{1,3})>")
_NIL = "-"
_SD = re.compile(rb"(?:\[(?:[^\]\\]|\\.)*\])+", re.DOTALL)  # SD-ELEMENTs; "\]" etc. are escapes


@dataclass(frozen=True, slots=True)
class SyslogRecord:
    """The header fields pacsguard keeps, and the payload (BOM removed)."""

    payload: bytes
    hostname: str | None = None
    app_name: str | None = None
    procid: str | None = None
    msgid: str | None = None
    rfc: str = "5424"  # or "3164", or "none"

    def header(self) -> dict[str, str]:
        """The non-empty header fields, for ``detail["ingest"]["syslog"]``."""
        fields = {"hostname": self.hostname, "app_name": self.app_name, "procid": self.procid, "msgid": self.msgid}
        return {k: v for k, v in fields.items() if v}


def _field(token: bytes) -> str | None:
    text = token.decode("ascii", "replace")
    return None if text == _NIL else text


def _skip_structured_data(data: bytes, at: int) -> int:
    """The index after STRUCTURED-DATA starting at ``at`` (``-`` or ``[..][..]``)."""
    if data[at : at + 1] == b"-":
        return at + 1
    match = _SD.match(data, at)
    if match is None or match.end() == at:
        raise MessageRejected("bad-syslog", "malformed or unterminated structured data in the syslog header")
    return match.end()


def _rfc5424(data: bytes, start: int) -> SyslogRecord:
    parts = data[start:].split(b" ", 5)
    if len(parts) < 6:
        raise MessageRejected("bad-syslog", "truncated RFC 5424 header")
    _timestamp, hostname, app_name, procid, msgid, rest = parts
    offset = len(data) - len(rest)
    end = _skip_structured_data(data, offset)
    payload = data[end + 1 :] if data[end : end + 1] == b" " else data[end:]
    return SyslogRecord(_strip_bom(payload), _field(hostname), _field(app_name), _field(procid), _field(msgid))


def _rfc3164(data: bytes, start: int) -> SyslogRecord:
    rest = data[start:]
    hostname = None
    # "Mmm dd hh:mm:ss HOST ..." (a day below 10 is padded with a space: "Nov  3").
    tokens = [t for t in rest[:64].split(b" ") if t]
    if len(tokens) >= 4 and b":" in tokens[2]:
        hostname = tokens[3].decode("ascii", "replace")
    positions = [i for i in (rest.find(b"<"), rest.find(b"{")) if i >= 0]
    payload = rest[min(positions) :] if positions else rest
    return SyslogRecord(_strip_bom(payload), hostname, rfc="3164")


def _strip_bom(payload: bytes) -> bytes:
    return payload[len(_BOM) :] if payload.startswith(_BOM) else payload


def parse_syslog(data: bytes) -> SyslogRecord:
    """The syslog header and payload of ``data``; raises ``MessageRejected`` (reason
    ``bad-syslog``) for a truncated RFC 5424 header or structured data."""
    match = _PRI.match(data)
    if match is None:
        return SyslogRecord(_strip_bom(data.strip()), rfc="none")
    start = match.end()
    if data[start : start + 2] == b"1 ":
        return _rfc5424(data, start + 2)
    return _rfc3164(data, start)


def parse_payload(payload: bytes) -> Message:
    """The audit message in ``payload``: DICOM XML or FHIR JSON, chosen by its first byte.

    Raises ``MessageRejected``: ``bad-utf8`` (not UTF-8), ``empty``, ``unknown-payload``,
    or what the XML and JSON parsers raise.
    """
    try:
        payload.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise MessageRejected("bad-utf8", f"the message is not valid UTF-8 (byte {exc.start})") from None
    body = _strip_bom(payload).strip()
    if not body:
        raise MessageRejected("empty", "the message has no payload")
    if body.startswith(b"<"):
        return parse_dicom_xml(body)
    if body.startswith(b"{"):
        return parse_fhir_json(body)
    raise MessageRejected("unknown-payload", "the payload is neither DICOM audit XML nor FHIR JSON")
