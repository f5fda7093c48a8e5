"""The receiver with parsing processes: the same events as parsing in-process, bad input
still quarantined, and a parsing process killed mid-batch loses nothing taken."""

from __future__ import annotations

import os
import signal
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest
from sqlalchemy import Engine

from pacsguard.audit import AuditLog, verify
from pacsguard.audit.canonical import Limits, prepare
from pacsguard.audit.export_fhir import to_fhir_json
from pacsguard.audit.syslog import frame
from pacsguard.clock import FakeClock
from pacsguard.domain import AuditEvent
from pacsguard.errors import IngestError
from pacsguard.ingest import IngestStore, Receiver, worker
from pacsguard.ingest.parsing import Arrival
from pacsguard.ingest.worker import ParserPool
from tests.unit.audit.export_samples import sample
from tests.unit.ingest.conftest import Pki, Running, logged, send_tls, send_udp, wait_for
from tests.unit.ingest.test_receiver import BAD_INPUTS, HeldLog, record

Start = Callable[..., Running]
TYPES = ["login.success", "study.read", "study.export", "study.query", "study.store"]


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


@contextmanager
def _stopped(pids: list[int]) -> Iterator[None]:
    """The processes stopped (SIGSTOP) until the block ends."""
    for pid in pids:
        os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        for pid in pids:
            if not _gone(pid):
                os.kill(pid, signal.SIGCONT)


def test_events_parsed_in_processes_are_the_ones_parsed_here_in_order(
    start_receiver: Start, pki: Pki, audit_log: AuditLog, clock: FakeClock
) -> None:
    running = start_receiver(processes=2)
    pids = running.parser.pids
    assert len(pids) == 2
    messages = [record(TYPES[i % len(TYPES)], i) for i in range(40)]
    send_tls(pki, running.tls, b"".join(frame(m) for m in messages), pki.client)
    running.wait("durable", 40)
    events = logged(running.engine)
    assert [e.seq for e in events] == list(range(40))
    here = Receiver(audit_log, IngestStore(running.engine), clock)
    for event, message in zip(events, messages, strict=True):
        ingest = event.detail["ingest"]
        assert isinstance(ingest, dict)
        arrival = Arrival(message, "tls", str(ingest["peer"]), str(ingest["source"]), clock.now())
        expected = here.event_for(arrival)
        assert isinstance(expected, AuditEvent)
        assert event == prepare(expected).recorded(event.seq or 0)
    running.thread.stop()
    assert all(_gone(pid) for pid in pids)  # stopped with the receiver
    assert verify(running.engine, None).ok


@pytest.mark.parametrize("case", ["truncated-xml", "external-entity", "invalid-utf8", "lying-frame-length"])
def test_bad_input_is_still_quarantined_and_recorded(start_receiver: Start, pki: Pki, case: str) -> None:
    data, reason = BAD_INPUTS[case]
    running = start_receiver(processes=2)
    send_tls(pki, running.tls, frame(record("study.read", 1)) + data, pki.client)
    send_tls(pki, running.tls, frame(record("study.export", 2)), pki.client)
    stats = running.wait("durable", 3)
    assert (stats["quarantined"], stats["parser_restarts"]) == (1, 0)
    events = logged(running.engine)
    assert [e.type for e in events] == ["study.read", "external.rejected", "study.export"]
    (row,) = IngestStore(running.engine).quarantined()
    assert row.reason == events[1].detail["reason"] == reason
    assert events[1].detail["quarantine_id"] == row.id


def test_a_parsing_process_killed_mid_batch_loses_nothing_taken(start_receiver: Start, pki: Pki) -> None:
    running = start_receiver(processes=2, batch=16)
    first, second = running.parser.pids
    n = 60
    with _stopped([first, second]):
        send_tls(pki, running.tls, b"".join(frame(record(TYPES[i % 5], i)) for i in range(n)), pki.client)
        running.wait("received", n)
        # The writer has taken a batch off the queue and sent it to the stopped processes.
        wait_for(lambda: running.stats()["queue_depth"] < n, "the writer to take a batch")
        assert running.stats()["durable"] == 0
        os.kill(first, signal.SIGKILL)
    stats = running.wait("durable", n)
    assert (stats["received"], stats["quarantined"], stats["parser_restarts"]) == (n, 0, 1)
    events = logged(running.engine)
    # Every message once, in the order sent ("pacsguard event T; seq I" names each).
    described = [str(e.detail["external"]["description"]).split(";")[:2] for e in events]  # type: ignore[index,call-overload]
    assert described == [[f"pacsguard event {TYPES[i % 5]}", f" seq {i}"] for i in range(n)]
    assert first not in running.parser.pids
    assert len(running.parser.pids) == 2


def test_without_processes_the_log_need_not_take_prepared_events(sqlite_engine: Engine, clock: FakeClock) -> None:
    Receiver(HeldLog(), IngestStore(sqlite_engine), clock)
    with pytest.raises(IngestError, match="prepared events"):
        Receiver(HeldLog(), IngestStore(sqlite_engine), clock, parser=ParserPool(Limits()))


def test_udp_datagrams_with_dicom_and_fhir_are_parsed_in_processes(start_receiver: Start) -> None:
    running = start_receiver(processes=2)
    send_udp(running.udp, record("study.read"))
    send_udp(running.udp, b"<86>1 - dev1 app - - - " + to_fhir_json(sample("login.failure")).encode())
    running.wait("durable", 2)
    events = logged(running.engine)
    assert sorted(e.type for e in events) == ["login.failure", "study.read"]
    assert {e.detail["ingest"]["format"] for e in events} == {"dicom", "fhir"}  # type: ignore[index,call-overload]


def test_hung_parsing_processes_are_replaced_and_nothing_taken_is_lost(start_receiver: Start, pki: Pki) -> None:
    running = start_receiver(processes=2, batch=16, parse_timeout=2.0)
    hung = running.parser.pids
    n = 20
    with _stopped(hung):  # alive, never answering: after 2 s they count as hung
        send_tls(pki, running.tls, b"".join(frame(record(TYPES[i % 5], i)) for i in range(n)), pki.client)
        stats = running.wait("durable", n)
    assert (stats["received"], stats["quarantined"], stats["parser_restarts"]) == (n, 0, 1)
    assert [e.type for e in logged(running.engine)] == [TYPES[i % 5] for i in range(n)]
    assert all(_gone(pid) for pid in hung)
    assert set(running.parser.pids).isdisjoint(hung)


def test_without_parsing_processes_the_receiver_parses_here(
    start_receiver: Start, pki: Pki, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(worker, "_CHILD", "import sys; sys.exit(3)")  # a child that cannot start
    running = start_receiver(processes=2)
    send_tls(pki, running.tls, b"".join(frame(record(TYPES[i % 5], i)) for i in range(10)), pki.client)
    stats = running.wait("durable", 10)
    assert stats["quarantined"] == 0
    assert [e.type for e in logged(running.engine)] == [TYPES[i % 5] for i in range(10)]
    assert running.server.receiver.parser is None
    assert "the parsing processes cannot start" in caplog.text
