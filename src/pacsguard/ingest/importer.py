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
skipped, before the entry is even parsed. A key is committed in the same transaction
as its event (``IngestStore.key_rows``, the audit log's companion rows): an import cut
short anywhere, even by kill -9, leaves no event without its key, so running it again
adds exactly what is missing.

Bounded memory: a file is read line by line (a single FHIR or XML document spanning
lines is read whole) and at most two batches are held: the one the audit log is
committing and the next, parsed and encoded meanwhile (``canonical.prepare``, here: the
log's writer then only numbers, hashes and inserts, ``AuditLog.append_prepared``).

A bad line or document is reported with its file and line number; the rest still loads.
"""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from itertools import chain
from operator import itemgetter
from pathlib import Path
from typing import Any, NamedTuple, TextIO

from pacsguard.audit.canonical import Limits, Prepared, prepare
from pacsguard.audit.export_files import event_from_json
from pacsguard.audit.log import AuditLog, Receipt
from pacsguard.clock import Clock
from pacsguard.collector import few_collections
from pacsguard.domain import AuditEvent
from pacsguard.domain.events import JsonValue
from pacsguard.errors import AuditExportError, IngestError, MessageRejected
from pacsguard.ingest.dicom_xml import parse_dicom_xml
from pacsguard.ingest.fhir_json import fhir_resources, parse_fhir
from pacsguard.ingest.mapping import to_event
from pacsguard.ingest.message import Message
from pacsguard.ingest.provenance import Provenance, content_key, digest, with_ingest
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


class _Item(NamedTuple):
    """One entry parsed into an event."""

    event: AuditEvent
    message_id: str | None
    audit_source: str | None = None


class _Entry(NamedTuple):
    """One line or document read but not parsed yet: its key needs only ``canonical``,
    so an entry imported before is skipped without parsing it."""

    line: int
    canonical: bytes
    payload: Any  # what the format's parser takes


_Read = _Entry | tuple[int, str]  # an entry, or (line, problem)
_Parsed = _Item | str  # an event, or the problem


def _canonical_json(data: Any) -> bytes:
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8", "surrogatepass")


def _from_message(message: Message) -> _Item:
    return _Item(to_event(message), message.message_id, message.audit_source_id)


def _numbered(lines: Iterable[str]) -> Iterator[tuple[int, str]]:
    for number, line in enumerate(lines, start=1):
        stripped = line.strip()
        if stripped:
            yield number, stripped


def _encoded(text: str) -> bytes:
    return text.encode("utf-8", "surrogateescape")


def _jsonl_entries(file: TextIO) -> Iterator[_Read]:
    # pacsguard's export writes an event the same way every time (fixed key order,
    # compact, ASCII): the line itself is its canonical form.
    for number, line in _numbered(file):
        yield _Entry(number, _encoded(line), line)


def _jsonl_item(line: str) -> _Parsed:
    try:
        data = json.loads(line)
        if not isinstance(data, dict):
            raise AuditExportError("expected a JSON object")
        event = event_from_json(data)
    except (ValueError, RecursionError, AuditExportError) as exc:
        return str(exc)[:300]
    return _Item(event, str(event.seq) if event.seq is not None else None)


def _fhir_document(number: int, document: Any) -> Iterator[_Read]:
    for resource in fhir_resources(document):
        yield _Entry(number, _canonical_json(resource), resource)


def _fhir_entries(file: TextIO) -> Iterator[_Read]:
    lines = _numbered(file)
    first = next(lines, None)
    if first is None:
        return
    try:
        json.loads(first[1])
    except (ValueError, RecursionError):  # not NDJSON: one document (a pretty-printed resource or Bundle)
        file.seek(0)
        try:
            document = json.loads(file.read())
        except (ValueError, RecursionError) as exc:
            yield 1, f"not JSON: {str(exc)[:200]}"
            return
        yield from _fhir_document(1, document)
        return
    for number, line in chain([first], lines):
        try:
            document = json.loads(line)
        except (ValueError, RecursionError) as exc:
            yield number, f"not JSON: {str(exc)[:200]}"
            continue
        yield from _fhir_document(number, document)


def _fhir_item(resource: Any) -> _Parsed:
    try:
        return _from_message(parse_fhir(resource))
    except MessageRejected as exc:
        return str(exc)


def _dicom_entries(file: TextIO) -> Iterator[_Read]:
    lines = _numbered(file)
    first = next(lines, None)
    if first is None:
        return
    second = next(lines, None)
    if second is not None and isinstance(_dicom_item(_encoded(first[1])), str):
        file.seek(0)
        whole = _encoded(file.read().strip())
        if not isinstance(_dicom_item(whole), str):  # one document over many lines
            yield _Entry(1, whole, whole)
            return
    for number, line in chain([first], [second] if second else [], lines):
        raw = _encoded(line)
        yield _Entry(number, raw, raw)


def _dicom_item(raw: bytes) -> _Parsed:
    try:
        return _from_message(parse_dicom_xml(raw))
    except MessageRejected as exc:
        return str(exc)


_READERS: dict[str, tuple[Callable[[TextIO], Iterator[_Read]], Callable[[Any], _Parsed]]] = {
    "jsonl": (_jsonl_entries, _jsonl_item),
    "fhir": (_fhir_entries, _fhir_item),
    "dicom": (_dicom_entries, _dicom_item),
}


class _Provenances:
    """The ``ingest`` provenance of a batch's events: the part they share is made once per
    source, and each event adds its own message id and digest to a copy."""

    def __init__(self, fmt: str, source: str, received_at: datetime, path: str) -> None:
        self.fmt, self.source, self.received_at, self.path = fmt, source, received_at, path
        self._shared: dict[str, dict[str, JsonValue]] = {}

    def of(self, item: _Item, canonical: bytes) -> dict[str, JsonValue]:
        source = self.source if self.source != DEFAULT_SOURCE else item.audit_source or self.source
        shared = self._shared.get(source)
        if shared is None:
            provenance = Provenance(source, "import", self.received_at, self.fmt, self.path)
            shared = self._shared[source] = provenance.to_json()
        return {**shared, "message_id": item.message_id, "digest": digest(canonical)}


@dataclass
class _InFlight:
    """A batch appended to the log, not known to be durable yet."""

    receipts: list[Receipt]
    entries: int  # how many entries (lines, documents) the batch read


class Importer:
    """Imports files into ``log``, recording keys in ``store``; one per CLI run."""

    def __init__(self, log: AuditLog, store: IngestStore, clock: Clock, *, source: str | None = None,
                 batch: int = 2000) -> None:  # fmt: skip
        self.log = log
        self.store = store
        self.clock = clock
        self.source = source or DEFAULT_SOURCE
        self.batch = batch
        self.report = ImportReport()
        # The keys of the last batches appended: a batch is read before the one before it
        # is committed, and may repeat its entries.
        self._recent: deque[set[str]] = deque(maxlen=2)

    def import_file(self, path: Path, fmt: str, progress: Callable[[int], None] | None = None) -> None:
        """Import one file (``fmt`` in ``FORMATS``) into the log; problems go to ``report``.

        Raises ``IngestError`` if the file cannot be read or the key table refuses, and
        ``AuditUnavailable`` if the log does.
        """
        if fmt not in FORMATS:
            raise IngestError(f"unknown import format {fmt!r}: use one of {', '.join(FORMATS)}")
        problems: list[tuple[int, str]] = []
        try:
            with few_collections(), path.open(encoding="utf-8", errors="surrogateescape") as file:
                self._import(file, path, fmt, problems, progress)
        except OSError as exc:
            raise IngestError(f"cannot read {path}: {exc.strerror or exc}") from exc
        finally:  # in line order: reading and parsing find them at different times
            self.report.problems.extend(f"{path}:{line}: {why}" for line, why in sorted(problems, key=itemgetter(0)))

    def _import(self, file: TextIO, path: Path, fmt: str, problems: list[tuple[int, str]],
                progress: Callable[[int], None] | None) -> None:  # fmt: skip
        """Parse and encode batch k+1 while the log commits batch k; append k+1 (each event
        with its key) before waiting for k, so that the log's writer never waits for us."""
        entries, parse = _READERS[fmt]
        limits = self.log.options.limits
        in_flight: _InFlight | None = None
        for chunk in _chunks(entries(file), self.batch, problems):
            now = self.clock.now()
            fresh = self._fresh(chunk, parse, problems, _Provenances(fmt, self.source, now, str(path)), limits)
            rows = self.store.key_rows([key for key, _ in fresh], self.source, now)
            append = self.log.append_prepared
            try:
                receipts = [append(prepared, row) for (_key, prepared), row in zip(fresh, rows, strict=True)]
            finally:
                if in_flight is not None:
                    self._settle(in_flight, progress)
            in_flight = _InFlight(receipts, len(chunk))
        if in_flight is not None:
            self._settle(in_flight, progress)

    def _fresh(self, chunk: list[_Entry], parse: Callable[[Any], _Parsed], problems: list[tuple[int, str]],
               provenances: _Provenances, limits: Limits) -> list[tuple[str, Prepared]]:  # fmt: skip
        """The entries not imported before (nor earlier in this run), parsed and encoded, in
        file order: a duplicate is skipped, a bad entry is a problem each time."""
        keys = [content_key(self.source, entry.canonical) for entry in chunk]
        known = self.store.known(keys)
        for recent in self._recent:
            known.update(key for key in keys if key in recent)
        fresh: list[tuple[str, Prepared]] = []
        taken: set[str] = set()
        duplicates = 0
        for key, entry in zip(keys, chunk, strict=True):
            if key in known or key in taken:
                duplicates += 1
                continue
            item = parse(entry.payload)
            if isinstance(item, str):
                problems.append((entry.line, item))
                continue
            taken.add(key)
            fresh.append((key, prepare(with_ingest(item.event, provenances.of(item, entry.canonical)), limits)))
        self._recent.append(taken)
        self.report.duplicates += duplicates
        self.report.read += duplicates + len(fresh)
        return fresh

    def _settle(self, batch: _InFlight, progress: Callable[[int], None] | None) -> None:
        """Wait until ``batch`` (its events and their keys) is durable."""
        for receipt in batch.receipts:
            receipt.seq()
        self.report.imported += len(batch.receipts)
        if progress is not None:
            progress(batch.entries)


def _chunks(read: Iterator[_Read], size: int, problems: list[tuple[int, str]]) -> Iterator[list[_Entry]]:
    """``size`` entries at a time; what could not be read goes to ``problems``."""
    chunk: list[_Entry] = []
    for entry in read:
        if isinstance(entry, _Entry):
            chunk.append(entry)
            if len(chunk) >= size:
                yield chunk
                chunk = []
        else:
            problems.append(entry)
    if chunk:
        yield chunk
