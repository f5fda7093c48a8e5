"""Whatever bytes arrive, the parsers give an event or a reasoned rejection: never another
exception (the receiver's catch-all for bugs must stay unused)."""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from pacsguard.audit.export_dicom import to_dicom_xml
from pacsguard.audit.export_fhir import to_fhir
from pacsguard.domain import AuditEvent
from pacsguard.errors import MessageRejected
from pacsguard.ingest import Framer, parse_payload, parse_syslog, to_event
from tests.unit.audit.export_samples import events, sample

XML = to_dicom_xml(sample("study.read"))
FHIR = json.dumps(to_fhir(sample("login.success"))).encode()


def _parses_or_rejects(data: bytes) -> None:
    reason = None
    try:
        to_event(parse_payload(parse_syslog(data).payload))
    except MessageRejected as exc:
        reason = exc.reason
    assert reason is None or reason.strip()


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300))
def test_arbitrary_bytes(data: bytes) -> None:
    _parses_or_rejects(data)


@settings(max_examples=200, deadline=None)
@given(st.sampled_from([XML, FHIR]), st.integers(0, 2000), st.binary(min_size=1, max_size=8))
def test_mutated_messages(base: bytes, at: int, junk: bytes) -> None:
    at %= len(base)
    _parses_or_rejects(base[:at] + junk + base[at + len(junk) :])
    _parses_or_rejects(b"<13>1 2026-01-01T00:00:00Z h a p m - " + base[:at])


@settings(max_examples=100, deadline=None)
@given(events)
def test_every_exported_event_parses_back(event: AuditEvent) -> None:
    _parses_or_rejects(to_dicom_xml(event))
    _parses_or_rejects(json.dumps(to_fhir(event)).encode())


@settings(max_examples=200, deadline=None)
@given(st.lists(st.binary(max_size=40), max_size=10))
def test_the_framer_takes_any_stream(chunks: list[bytes]) -> None:
    framer = Framer(max_bytes=64, keep_bytes=16, skip_limit=256)
    for chunk in chunks:
        for item in framer.feed(chunk):
            assert len(getattr(item, "raw", b"")) <= 16
    framer.end()
