"""Bulk import of audit files into the audit log: pacsguard JSONL, FHIR, DICOM A.5 XML.

Formats:

- ``jsonl``: pacsguard's own export (``audit export --format jsonl``), one event per line;
  the event keeps every field and its ``occurred_at``; its old ``seq`` becomes
  ``detail["ingest"]["message_id"]``;
- ``fhir``: FHIR R4 AuditEvent resources as NDJSON (one per line) or one JSON document
  (a resource or a Bundle of them);
- ``dicom``: PS3.15 A.5 ``AuditMessage`` documents, one per line (as ``audit export
  --format dicom`` writes them) or one document per file.

Idempotent: each event is keyed by ``content_key(source, canonical bytes of the
original)`` (JSONL: the line as pacsguard's export wrote it; FHIR: the resource with sorted
keys, no spaces; XML: the message as written, stripped), kept
in ``ingest_imported``; keys already there (or seen earlier in the same run) are
skipped. Keys are recorded after the events are durable: a crash in between can
import that batch again on the next run (at most ``batch`` events), never lose one.

A bad line or document is reported with its file and line number; the rest still loads.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pacsguard.audit.export_files import event_from_json
from pacsguard.audit.log import AuditLog
from pacsguard.clock import Clock
from pacsguard.domain import AuditEvent
from pacsguard.errors import AuditExportError, IngestError, MessageRejected
from pacsguard.ingest.dicom_xml import parse_dicom_xml
from pacsguard.ingest.fhir_json import fhir_resources, parse_fhir
from pacsguard.ingest.mapping import to_event
from pacsguard.ingest.message import Message
from pacsguard.ingest.provenance import Provenance, attach, content_key, digest
from pacsguard.ingest.store import IngestStore

__all__ = ["DEFAULT_SOURCE", "FORMATS", "ImportReport", "Importer"]

FORMATS = ("jsonl", "fhir", "dicom")
DEFAULT_SOURCE = "import"


@dataclass
class ImportReport:
    """What an import did: events added, duplicates skipped, problems (``file:line: why``)."""

    read: int = 0
    imported: int = 0
    duplicates: int = 0
    problems: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class _Item:
    line: int
    canonical: bytes
    event: AuditEvent
    message_id: str | None
    format: str
    audit_source: str | None = None


_Parsed = _Item | tuple[int, str]  # an event, or (line, problem)


def _canonical_json(data: Any) -> bytes:
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8", "surrogatepass")


def _from_message(line: int, raw: bytes, message: Message) -> _Item:
    return _Item(line, raw, to_event(message), message.message_id, message.format, message.audit_source_id)


def _jsonl(lines: Iterator[tuple[int, str]]) -> Iterator[_Parsed]:
    for number, line in lines:
        try:
            data = json.loads(line)
            if not isinstance(data, dict):
                raise AuditExportError("expected a JSON object")
            event = event_from_json(data)
        except (ValueError, RecursionError, AuditExportError) as exc:
            yield number, str(exc)[:300]
            continue
        seq = str(event.seq) if event.seq is not None else None
        # pacsguard's export writes an event the same way every time (fixed key order,
        # compact, ASCII): the line itself is its canonical form.
        yield _Item(number, line.encode("utf-8", "surrogateescape"), event, seq, "jsonl")


def _fhir_document(number: int, document: Any) -> Iterator[_Parsed]:
    for resource in fhir_resources(document):
        try:
            yield _from_message(number, _canonical_json(resource), parse_fhir(resource))
        except MessageRejected as exc:
            yield number, str(exc)


def _fhir(text: str, lines: Iterator[tuple[int, str]]) -> Iterator[_Parsed]:
    first = next((line for _, line in _numbered(text)), "")
    try:
        json.loads(first)
    except ValueError:  # not NDJSON: one document (a pretty-printed resource or Bundle)
        try:
            yield from _fhir_document(1, json.loads(text))
        except (ValueError, RecursionError) as exc:
            yield 1, f"not JSON: {str(exc)[:200]}"
        return
    for number, line in lines:
        try:
            document = json.loads(line)
        except (ValueError, RecursionError) as exc:
            yield number, f"not JSON: {str(exc)[:200]}"
            continue
        yield from _fhir_document(number, document)


def _dicom_one(number: int, raw: bytes) -> _Parsed:
    try:
        return _from_message(number, raw, parse_dicom_xml(raw))
    except MessageRejected as exc:
        return number, str(exc)


def _dicom(text: str, lines: Iterator[tuple[int, str]]) -> Iterator[_Parsed]:
    first = next(_numbered(text), None)
    if first is not None and first[1] != text.strip() and isinstance(_dicom_one(*_encoded(first)), tuple):
        whole = _dicom_one(1, text.strip().encode("utf-8", "surrogateescape"))
        if not isinstance(whole, tuple):  # one document over many lines
            yield whole
            return
    for number, line in lines:
        yield _dicom_one(number, line.encode("utf-8", "surrogateescape"))


def _encoded(line: tuple[int, str]) -> tuple[int, bytes]:
    return line[0], line[1].encode("utf-8", "surrogateescape")


def _numbered(text: str) -> Iterator[tuple[int, str]]:
    for number, line in enumerate(text.splitlines(), start=1):
        if line.strip():
            yield number, line.strip()


class Importer:
    """Imports files into ``log``, remembering keys in ``store``; one per CLI run."""

    def __init__(self, log: AuditLog, store: IngestStore, clock: Clock, *, source: str | None = None,
                 batch: int = 2000) -> None:  # fmt: skip
        self.log = log
        self.store = store
        self.clock = clock
        self.source = source or DEFAULT_SOURCE
        self.batch = batch
        self.report = ImportReport()

    def import_file(self, path: Path, fmt: str, progress: Callable[[int], None] | None = None) -> None:
        """Import one file (``fmt`` in ``FORMATS``) into the log; problems go to ``report``.

        Raises ``IngestError`` if the file cannot be read or the log or key table refuses.
        """
        if fmt not in FORMATS:
            raise IngestError(f"unknown import format {fmt!r}: use one of {', '.join(FORMATS)}")
        try:
            text = path.read_text(encoding="utf-8", errors="surrogateescape")
        except OSError as exc:
            raise IngestError(f"cannot read {path}: {exc.strerror or exc}") from exc
        lines = _numbered(text)
        parsed = _jsonl(lines) if fmt == "jsonl" else _fhir(text, lines) if fmt == "fhir" else _dicom(text, lines)
        pending: list[_Item] = []
        for item in parsed:
            if isinstance(item, tuple):
                self.report.problems.append(f"{path}:{item[0]}: {item[1]}")
                continue
            self.report.read += 1
            pending.append(item)
            if len(pending) >= self.batch:
                self._write(pending, path)
                if progress is not None:
                    progress(len(pending))
                pending = []
        if pending:
            self._write(pending, path)
            if progress is not None:
                progress(len(pending))

    def _write(self, items: list[_Item], path: Path) -> None:
        keyed = [(content_key(self.source, item.canonical), item) for item in items]
        known = self.store.known(key for key, _ in keyed)
        now = self.clock.now()
        fresh: list[tuple[str, AuditEvent]] = []
        for key, item in keyed:
            if key in known:
                self.report.duplicates += 1
                continue
            known.add(key)
            provenance = Provenance(
                source=self.source if self.source != DEFAULT_SOURCE else item.audit_source or self.source,
                transport="import", received_at=now, format=item.format, peer=str(path),
                message_id=item.message_id, digest=digest(item.canonical),
            )  # fmt: skip
            fresh.append((key, attach(item.event, provenance)))
        receipts = [(key, self.log.append(event)) for key, event in fresh]
        recorded = [(key, self.source, receipt.result().seq) for key, receipt in receipts]
        self.store.remember([(k, s, q) for k, s, q in recorded if q is not None], now)
        self.report.imported += len(recorded)
