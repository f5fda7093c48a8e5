"""DICOM PS3.15 A.5 audit messages (XML) into ``Message``: pure, no I/O.

The parser is hardened against hostile XML: a document with a DOCTYPE (and so any
entity declaration: external entities, the "billion laughs" expansion bomb) is refused
before lxml sees it, and lxml itself runs with ``resolve_entities=False``,
``no_network=True``, ``load_dtd=False`` and ``huge_tree=False``. Namespaces are ignored
(some senders qualify ``AuditMessage``); the element and attribute names are those of
the A.5.1 schema. Base64 values (``ParticipantObjectDetail/@value``,
``ParticipantObjectQuery``) are decoded; what does not decode is kept as sent.
"""

from __future__ import annotations

import base64
import binascii
import threading
from datetime import UTC, datetime

from lxml import etree

from pacsguard.audit.dicom_codes import Code
from pacsguard.errors import MessageRejected
from pacsguard.ingest.message import Message, Participant, ParticipantObject

__all__ = ["parse_dicom_xml", "parse_time"]

_BOM = b"\xef\xbb\xbf"


_local = threading.local()  # lxml parsers may be reused, but not by two threads at once


def _parser() -> etree.XMLParser:
    parser: etree.XMLParser | None = getattr(_local, "parser", None)
    if parser is None:
        parser = _local.parser = _new_parser()
    return parser


def _new_parser() -> etree.XMLParser:
    return etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        huge_tree=False,
        dtd_validation=False,
        remove_comments=True,
        remove_pis=True,
    )


def _strip_namespaces(root: etree._Element) -> None:
    """Make every tag local (some senders qualify the A.5 elements); attributes in A.5
    are unqualified, so they stay as they are."""
    for element in root.iter():
        tag: object = element.tag
        if isinstance(tag, str) and tag.startswith("{"):
            element.tag = tag.rsplit("}", 1)[-1]


_Groups = dict[str, list[etree._Element]]


def _groups(element: etree._Element) -> _Groups:
    """The element's children by tag, in one pass (cheaper than a search per name)."""
    groups: _Groups = {}
    for child in element:
        tag: object = child.tag
        if isinstance(tag, str):
            groups.setdefault(tag, []).append(child)
    return groups


def _first(groups: _Groups, name: str) -> etree._Element | None:
    found = groups.get(name)
    return found[0] if found else None


def _attr(element: etree._Element, name: str) -> str | None:
    value = element.get(name)
    return str(value) if value is not None else None


def _code(element: etree._Element | None) -> Code | None:
    if element is None:
        return None
    a: dict[str, str] = {str(k): str(v) for k, v in element.items()}
    code = a.get("csd-code") or a.get("code")
    if code is None:
        return None
    scheme = a.get("codeSystemName") or a.get("codeSystem") or ""
    return Code(code, scheme, a.get("displayName") or a.get("originalText") or "")


def _b64(text: str) -> str:
    try:
        return base64.b64decode(text.encode("ascii"), validate=True).decode("utf-8", "replace")
    except (binascii.Error, ValueError, UnicodeEncodeError):
        return text


def parse_time(text: str | None, notes: list[str]) -> datetime:
    """An ISO 8601 timestamp, made UTC; a time without a zone is taken as UTC (noted).

    Raises ``MessageRejected`` (reason ``bad-time``) for a missing or unreadable time.
    """
    if not text:
        raise MessageRejected("bad-time", "the message has no event time")
    cleaned = text.strip().replace("Z", "+00:00").replace("z", "+00:00")
    try:
        moment = datetime.fromisoformat(cleaned)
        if moment.tzinfo is None:
            notes.append("event time without a time zone, taken as UTC")
            moment = moment.replace(tzinfo=UTC)
        return moment.astimezone(UTC)
    except (ValueError, OverflowError):
        raise MessageRejected("bad-time", f"unreadable event time {text[:64]!r}") from None


def _participant(element: etree._Element) -> Participant:
    roles = tuple(c for c in (_code(r) for r in element.iterchildren("RoleIDCode")) if c is not None)
    a: dict[str, str] = {str(k): str(v) for k, v in element.items()}
    return Participant(
        user_id=a.get("UserID", ""),
        requestor=a.get("UserIsRequestor", "").strip().lower() == "true",
        alternative_id=a.get("AlternativeUserID"),
        name=a.get("UserName"),
        network_id=a.get("NetworkAccessPointID"),
        network_type=a.get("NetworkAccessPointTypeCode"),
        roles=roles,
    )


def _object(element: etree._Element) -> ParticipantObject:
    parts = _groups(element)
    details: list[tuple[str, str]] = []
    for d in parts.get("ParticipantObjectDetail", ()):
        kind, value = _attr(d, "type"), _attr(d, "value")
        if kind is not None and value is not None:
            details.append((kind, _b64(value)))
    instances: int | None = None
    uids: list[str] = []
    description = _first(parts, "ParticipantObjectDescription")
    for sop in description.iterchildren("SOPClass") if description is not None else ():
        count = _attr(sop, "NumberOfInstances")
        if count is not None and count.strip().isdigit():
            instances = (instances or 0) + int(count)
        uids.extend(uid for i in sop.iterchildren("Instance") if (uid := _attr(i, "UID")))
    query = _first(parts, "ParticipantObjectQuery")
    name = _first(parts, "ParticipantObjectName")
    return ParticipantObject(
        object_id=_attr(element, "ParticipantObjectID") or "",
        type_code=_attr(element, "ParticipantObjectTypeCode"),
        role=_attr(element, "ParticipantObjectTypeCodeRole"),
        id_type=_code(_first(parts, "ParticipantObjectIDTypeCode")),
        name=name.text if name is not None else None,
        details=tuple(details),
        instances=instances,
        instance_uids=tuple(uids),
        query=_b64(query.text or "") if query is not None else None,
    )


def _parse_tree(data: bytes) -> etree._Element:
    body = data[len(_BOM) :] if data.startswith(_BOM) else data
    head = body.lstrip()
    if b"<!DOCTYPE" in body or b"<!ENTITY" in body:
        raise MessageRejected("xml-dtd", "XML with a DOCTYPE or entity declaration is refused (no DTDs, no entities)")
    if not head.startswith(b"<"):
        raise MessageRejected("not-xml", "the payload is not XML")
    try:
        root = etree.fromstring(body, _parser())
    except etree.XMLSyntaxError as exc:
        raise MessageRejected("bad-xml", f"malformed XML: {exc}") from None
    if getattr(root.getroottree().docinfo, "doctype", ""):
        raise MessageRejected("xml-dtd", "XML with a DOCTYPE is refused")
    if isinstance(root.tag, str) and root.tag.startswith("{"):
        _strip_namespaces(root)
    return root


def parse_dicom_xml(data: bytes) -> Message:
    """The PS3.15 A.5 ``AuditMessage`` in ``data`` (UTF-8, an optional BOM).

    Raises ``MessageRejected`` with reason ``xml-dtd`` (DOCTYPE or entities), ``not-xml``,
    ``bad-xml`` (malformed or truncated), ``not-audit-message`` (another root element or
    no EventIdentification/EventID) or ``bad-time``.
    """
    root = _parse_tree(data)
    if root.tag != "AuditMessage":
        raise MessageRejected("not-audit-message", f"root element <{str(root.tag)[:64]}> is not <AuditMessage>")
    parts = _groups(root)
    ident = _first(parts, "EventIdentification")
    heads = _groups(ident) if ident is not None else {}
    event_id = _code(_first(heads, "EventID"))
    if ident is None or event_id is None:
        raise MessageRejected("not-audit-message", "the AuditMessage has no EventIdentification/EventID")
    notes: list[str] = []
    occurred = parse_time(_attr(ident, "EventDateTime"), notes)
    source = _first(parts, "AuditSourceIdentification")
    description = _first(heads, "EventOutcomeDescription")
    return Message(
        format="dicom",
        event_id=event_id,
        occurred_at=occurred,
        action=_attr(ident, "EventActionCode"),
        type_codes=tuple(c for c in (_code(t) for t in heads.get("EventTypeCode", ())) if c is not None),
        outcome=_attr(ident, "EventOutcomeIndicator") or "0",
        description=description.text if description is not None else None,
        audit_source_id=_attr(source, "AuditSourceID") if source is not None else None,
        audit_site_id=_attr(source, "AuditEnterpriseSiteID") if source is not None else None,
        participants=tuple(_participant(p) for p in parts.get("ActiveParticipant", ())),
        objects=tuple(_object(o) for o in parts.get("ParticipantObjectIdentification", ())),
        notes=tuple(notes),
    )
