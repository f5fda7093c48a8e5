"""The ATNA receiver over real TLS (certificates made here) and UDP, writing to a real log."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable
from datetime import timedelta

import pytest
from sqlalchemy import Engine

from pacsguard.audit.export_dicom import AuditSource, to_dicom_xml
from pacsguard.audit.export_fhir import to_fhir_json
from pacsguard.audit.syslog import frame, syslog_record
from pacsguard.clock import FakeClock
from pacsguard.domain import AuditEvent
from pacsguard.ingest import IngestStore, Receiver, ReceiverOptions
from tests.unit.audit.export_samples import sample
from tests.unit.ingest.conftest import Pki, Running, logged, send_tls, send_udp, wait_for

Start = Callable[..., Running]


def record(event_type: str, seq: int = 1) -> bytes:
    """A syslog record as an ATNA sender writes it (pacsguard's own forwarder format)."""
    return syslog_record(sample(event_type, seq), hostname="pacs1", source=AuditSource("ARCHIVE-1"))


def test_messages_over_tls_become_durable_events(start_receiver: Start, pki: Pki) -> None:
    running = start_receiver()
    types = ["login.success", "study.read", "study.export"]
    send_tls(pki, running.tls, b"".join(frame(record(t, i)) for i, t in enumerate(types, 1)), pki.client)
    stats = running.wait("durable", 3)
    assert (stats["received"], stats["quarantined"], stats["connections"]) == (3, 0, 1)
    events = logged(running.engine)
    assert [e.type for e in events] == types
    first = events[0]
    assert first.occurred_at == sample("login.success", 1).occurred_at  # the message's own time
    assert first.actor.principal_id == "dr.house"
    ingest = first.detail["ingest"]
    assert isinstance(ingest, dict)
    assert ingest["transport"] == "tls"
    assert "CN=CT7" in str(ingest["source"])  # the certificate names the sender
    assert ingest["received_at"] is not None
    assert ingest["syslog"] == {"hostname": "pacs1", "app_name": "pacsguard", "procid": ingest["syslog"]["procid"],  # type: ignore[index,call-overload]
                                "msgid": "login.success"}  # fmt: skip


@pytest.mark.parametrize("cert", ["none", "stranger"])
def test_a_client_certificate_from_the_site_ca_is_required(start_receiver: Start, pki: Pki, cert: str) -> None:
    running = start_receiver()
    send_tls(pki, running.tls, frame(record("study.read")), None if cert == "none" else pki.stranger)
    running.wait("tls_failures", 1)
    send_tls(pki, running.tls, frame(record("study.query")), pki.client)
    running.wait("durable", 1)
    assert [e.type for e in logged(running.engine)] == ["study.query"]


def test_without_the_requirement_a_client_without_certificate_is_served(start_receiver: Start, pki: Pki) -> None:
    running = start_receiver(require_client_cert=False)
    send_tls(pki, running.tls, frame(record("study.read")))
    running.wait("durable", 1)
    ingest = logged(running.engine)[0].detail["ingest"]
    assert isinstance(ingest, dict)
    assert ingest["source"] == "ARCHIVE-1"  # no certificate: the AuditSourceID


def test_udp_datagrams_with_dicom_and_fhir(start_receiver: Start) -> None:
    running = start_receiver()
    send_udp(running.udp, record("study.read"))
    send_udp(running.udp, b"<86>1 - dev1 app - - - " + to_fhir_json(sample("login.failure")).encode())
    running.wait("durable", 2)
    events = logged(running.engine)
    assert sorted(e.type for e in events) == ["login.failure", "study.read"]
    assert {e.detail["ingest"]["transport"] for e in events} == {"udp"}  # type: ignore[index,call-overload]


XML = to_dicom_xml(sample("study.read"))
HEADER = b"<85>1 2026-11-23T12:00:00Z bad-device app - - - "
BAD_INPUTS = {
    "truncated-xml": (frame(HEADER + XML[:-30]), "bad-xml"),
    "external-entity": (
        frame(HEADER + b'<!DOCTYPE m [<!ENTITY x SYSTEM "file:///etc/passwd">]><AuditMessage>&x;</AuditMessage>'),
        "xml-dtd",
    ),
    "entity-bomb": (
        frame(
            HEADER + b'<!DOCTYPE l [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">'
            b'<!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;">]><AuditMessage>&c;</AuditMessage>'
        ),
        "xml-dtd",
    ),
    "lying-frame-length": (b"900 " + HEADER + XML[:200], "truncated-frame"),
    "ten-megabytes": (frame(HEADER + b"<AuditMessage>" + b"x" * (10 << 20) + b"</AuditMessage>"), "oversized"),
    "invalid-utf8": (frame(HEADER + XML.replace(b"dr.house", b"dr.\xff\xfehouse")), "bad-utf8"),
}


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_input_is_quarantined_counted_and_recorded_and_the_receiver_keeps_serving(
    start_receiver: Start, pki: Pki, case: str
) -> None:
    data, reason = BAD_INPUTS[case]
    running = start_receiver()
    send_tls(pki, running.tls, data, pki.client)
    running.wait("quarantined", 1)
    send_tls(pki, running.tls, frame(record("study.export")), pki.client)  # a new connection is served
    stats = running.wait("durable", 2)
    assert stats["quarantined"] == 1
    events = logged(running.engine)
    assert sorted(e.type for e in events) == ["external.rejected", "study.export"]
    rejected = next(e for e in events if e.type == "external.rejected")
    assert rejected.detail["reason"] == reason
    (row,) = IngestStore(running.engine).quarantined()
    assert row.reason == reason
    assert len(row.raw) <= 64 * 1024  # kept raw, bounded
    assert rejected.detail["quarantine_id"] == row.id
    if case == "ten-megabytes":
        assert row.size > 10 << 20


def test_an_oversized_frame_is_skipped_and_the_connection_goes_on(start_receiver: Start, pki: Pki) -> None:
    running = start_receiver(max_message_bytes=4096)
    big = frame(HEADER + b"<AuditMessage>" + b"y" * 100_000 + b"</AuditMessage>")
    send_tls(pki, running.tls, big + frame(record("study.read")), pki.client)
    stats = running.wait("durable", 2)
    assert (stats["quarantined"], stats["closed_lying"], stats["connections"]) == (1, 0, 1)


def test_a_short_lying_length_closes_only_that_connection(start_receiver: Start, pki: Pki) -> None:
    running = start_receiver()
    # The length claims 5 bytes: the rest of the stream is out of step and cannot be trusted.
    send_tls(pki, running.tls, b"5 " + record("study.read") + frame(record("study.read")), pki.client)
    running.wait("closed_lying", 1)
    send_tls(pki, running.tls, frame(record("study.query")), pki.client)
    running.wait("durable", 3)
    events = logged(running.engine)
    assert [e.type for e in events].count("external.rejected") == 2  # the 5-byte frame, then the rest
    assert "study.query" in [e.type for e in events]
    assert "study.read" not in [e.type for e in events]


class GatedLog:
    """An ``AuditAppender`` whose receipts resolve only once ``gate`` is set."""

    def __init__(self) -> None:
        self.gate = threading.Event()
        self.appended: list[AuditEvent] = []

    def append(self, event: AuditEvent) -> Awaitable[AuditEvent]:
        self.appended.append(event)
        return self._wait(event)

    async def _wait(self, event: AuditEvent) -> AuditEvent:
        while not self.gate.is_set():
            await asyncio.sleep(0.005)
        return event


def test_a_full_queue_stops_reading_tls_and_releases_when_the_log_catches_up(start_receiver: Start, pki: Pki) -> None:
    log = GatedLog()
    running = start_receiver(log=log, queue_size=4, batch=2)
    sender = threading.Thread(
        target=send_tls,
        args=(pki, running.tls, b"".join(frame(record("study.read", i)) for i in range(60)), pki.client),
    )
    sender.start()
    running.wait("queue_depth", 4)
    wait_for(lambda: len(log.appended) == 2, "the writer's first batch")
    # The writer holds 2, the queue 4, the reader 1 parsed message: nothing more is read.
    assert running.stats()["received"] <= 2 + 4 + 1
    log.gate.set()
    running.wait("durable", 60)
    sender.join()
    assert running.stats()["udp_dropped"] == 0


def test_a_full_queue_drops_udp_and_counts_it(start_receiver: Start) -> None:
    log = GatedLog()
    running = start_receiver(log=log, queue_size=3, batch=1)
    send_udp(running.udp, record("study.read"))
    wait_for(lambda: len(log.appended) == 1, "the writer to hold one")
    for i in range(10):
        send_udp(running.udp, record("study.read", i))
    wait_for(lambda: running.stats()["received"] + running.stats()["udp_dropped"] == 11, "all datagrams seen")
    stats = running.stats()
    assert (stats["received"], stats["udp_dropped"], stats["queue_depth"]) == (4, 7, 3)
    log.gate.set()
    running.wait("durable", 4)


class HeldLog:
    """An ``AuditAppender`` whose receipts resolve only when the test commits them."""

    def __init__(self) -> None:
        self.held: list[tuple[AuditEvent, asyncio.Future[AuditEvent]]] = []
        self.most_in_flight = 0

    def append(self, event: AuditEvent) -> Awaitable[AuditEvent]:
        receipt = asyncio.get_running_loop().create_future()
        self.held.append((event, receipt))
        self.most_in_flight = max(self.most_in_flight, sum(not r.done() for _, r in self.held))
        return receipt

    def commit(self) -> None:
        for event, receipt in self.held:
            if not receipt.done():
                receipt.set_result(event)


async def _settle() -> None:
    """Let the writer task run until it waits for the log (no timers involved)."""
    for _ in range(100):
        await asyncio.sleep(0)


def test_the_writer_appends_one_half_batch_while_the_log_commits_the_other(
    sqlite_engine: Engine, clock: FakeClock
) -> None:
    log = HeldLog()
    receiver = Receiver(log, IngestStore(sqlite_engine), clock, ReceiverOptions(batch=4))

    async def scenario() -> None:
        await receiver.take_all(receiver.arrival(record("study.read", i), "tls", None) for i in range(10))
        receiver.start()
        await _settle()
        assert (len(log.held), receiver.queue.qsize()) == (4, 6)  # two halves appended, none durable
        while receiver.counters.durable < 10:
            log.commit()
            await _settle()
        await receiver.stop()

    asyncio.run(scenario())
    assert log.most_in_flight == 4  # never more than a batch waiting for the log
    assert [e.occurred_at for e, _ in log.held] == [sample("study.read", i).occurred_at for i in range(10)]


def test_a_message_keeps_the_time_it_arrived_not_the_time_it_was_parsed(
    sqlite_engine: Engine, clock: FakeClock
) -> None:
    log = HeldLog()
    receiver = Receiver(log, IngestStore(sqlite_engine), clock)
    arrived = clock.now()

    async def scenario() -> None:
        await receiver.take(record("study.read"), "tls", "192.0.2.9:6514", "CN=CT7")
        clock.advance(timedelta(seconds=30))  # the writer parses it only now
        receiver.start()
        await _settle()
        log.commit()
        await receiver.stop()

    asyncio.run(scenario())
    ((event, _),) = log.held
    assert event.detail["ingest"]["received_at"] == arrived.isoformat()  # type: ignore[index,call-overload]
