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
from collections.abc import Iterable
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


def _first(element: etree._Element | None, tag: str) -> etree._Element | None:
    """The first child named ``tag`` (A.5 elements are unqualified once namespaces go)."""
    if element is not None:
        for child in element:
            if child.tag == tag:
                return child
    return None


def _code(element: etree._Element | None) -> Code | None:
    """A coded value from its attributes: ``csd-code`` (A.5) or ``code``, the scheme and
    the meaning; one ``get`` per attribute (building the attribute dict costs more)."""
    if element is None:
        return None
    get = element.get
    code = get("csd-code") or get("code")
    if code is None:
        return None
    scheme = get("codeSystemName") or get("codeSystem") or ""
    return Code(code, scheme, get("displayName") or get("originalText") or "")


def _codes(elements: Iterable[etree._Element]) -> tuple[Code, ...]:
    return tuple(code for code in map(_code, elements) if code is not None)


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
    get = element.get
    return Participant(
        user_id=get("UserID") or "",
        requestor=(get("UserIsRequestor") or "").strip().lower() == "true",
        alternative_id=get("AlternativeUserID"),
        name=get("UserName"),
        network_id=get("NetworkAccessPointID"),
        network_type=get("NetworkAccessPointTypeCode"),
        roles=_codes(child for child in element if child.tag == "RoleIDCode"),
    )


def _described(description: etree._Element | None) -> tuple[int | None, tuple[str, ...]]:
    """NumberOfInstances summed over the SOPClass children, and their Instance UIDs."""
    instances: int | None = None
    uids: list[str] = []
    for sop in description if description is not None else ():
        if sop.tag != "SOPClass":
            continue
        count = sop.get("NumberOfInstances")
        if count is not None and count.strip().isdigit():
            instances = (instances or 0) + int(count)
        uids.extend(uid for i in sop if i.tag == "Instance" and (uid := i.get("UID")))
    return instances, tuple(uids)


def _object(element: etree._Element) -> ParticipantObject:
    details: list[tuple[str, str]] = []
    first: dict[str, etree._Element] = {}
    for child in element:  # one pass: the details, and the first of each other child
        tag = child.tag
        if tag == "ParticipantObjectDetail":
            kind, value = child.get("type"), child.get("value")
            if kind is not None and value is not None:
                details.append((kind, _b64(value)))
        elif isinstance(tag, str):
            first.setdefault(tag, child)
    instances, uids = _described(first.get("ParticipantObjectDescription"))
    query = first.get("ParticipantObjectQuery")
    name = first.get("ParticipantObjectName")
    get = element.get
    return ParticipantObject(
        object_id=get("ParticipantObjectID") or "",
        type_code=get("ParticipantObjectTypeCode"),
        role=get("ParticipantObjectTypeCodeRole"),
        id_type=_code(first.get("ParticipantObjectIDTypeCode")),
        name=name.text if name is not None else None,
        details=tuple(details),
        instances=instances,
        instance_uids=uids,
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
    ident = _first(root, "EventIdentification")
    event_id = _code(_first(ident, "EventID"))
    if ident is None or event_id is None:
        raise MessageRejected("not-audit-message", "the AuditMessage has no EventIdentification/EventID")
    notes: list[str] = []
    get = ident.get
    occurred = parse_time(get("EventDateTime"), notes)
    source = _first(root, "AuditSourceIdentification")
    description = _first(ident, "EventOutcomeDescription")
    return Message(
        format="dicom",
        event_id=event_id,
        occurred_at=occurred,
        action=get("EventActionCode"),
        type_codes=_codes(child for child in ident if child.tag == "EventTypeCode"),
        outcome=get("EventOutcomeIndicator") or "0",
        description=description.text if description is not None else None,
        audit_source_id=source.get("AuditSourceID") if source is not None else None,
        audit_site_id=source.get("AuditEnterpriseSiteID") if source is not None else None,
        participants=tuple(_participant(p) for p in root if p.tag == "ActiveParticipant"),
        objects=tuple(_object(o) for o in root if o.tag == "ParticipantObjectIdentification"),
        notes=tuple(notes),
    )
