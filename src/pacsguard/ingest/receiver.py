"""The receiver's core: messages in, events into the audit log, bad input into quarantine.

The network side (``syslog_server``) hands each message to ``Receiver.take`` (or several
at once to ``take_all``), which stamps its arrival time and puts it, still unparsed, on a
bounded ``asyncio.Queue``. When the queue is full a TCP reader waits (the connection
stops being read, TCP slows the sender), a UDP datagram is dropped and counted
(``take_nowait``). The queue holds raw bytes rather than parsed events: under overload it
is full, and ten thousand parsed events (two dozen dicts and lists each) would make every
garbage collection pass walk them all; bytes it does not walk.

One writer task drains the queue: it has the messages parsed (``parsing``:
``syslog_record``, ``dicom_xml``/``fhir_json``, ``mapping``), appends the events to the
``AuditLog`` without waiting for each (the log's group commit carries them together),
then awaits the receipts; only then does it count them ``durable``. It keeps at most
``batch`` events in flight, in two halves, so that one half is parsed while the log
commits the other. If the log refuses, the writer keeps the refused events and retries:
the queue fills and back-pressure reaches the senders; nothing already taken is dropped.

Parsing happens here, or, given a ``ParserPool`` (``pacsguard serve`` does), in parsing
processes (``worker``) that also encode the events for the log (``append_prepared``):
the writer sends them the next half batch before it appends the current one, and takes
the results back in order. If one dies or hangs, the processes are restarted, the half
it was parsing is sent again one message at a time (a message a process dies on again
is quarantined as ``internal-error``) and later halves are sent again: nothing taken is
lost, and the order is kept.

A rejected message (malformed, oversized, invalid UTF-8, a DTD, a lying frame length) is
counted, stored in the bounded quarantine (``IngestStore``) and recorded as an
``external.rejected`` event; the receiver never stops for bad input.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Awaitable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, cast

from pacsguard.audit.canonical import Prepared
from pacsguard.clock import Clock
from pacsguard.domain import Actor, AuditEvent, Outcome
from pacsguard.errors import AuditUnavailable, IngestError, ParserDied
from pacsguard.ingest.parsing import Arrival, event_for
from pacsguard.ingest.provenance import Provenance, attach, digest
from pacsguard.ingest.store import IngestStore, Quarantined
from pacsguard.ingest.worker import ParserPool, Ticket

__all__ = [
    "Arrival",
    "AuditAppender",
    "Counters",
    "PreparedAppender",
    "Receiver",
    "ReceiverOptions",
    "rejected_event",
]

log = logging.getLogger(__name__)


class AuditAppender(Protocol):
    """The audit log as the receiver uses it: ``append`` returns an awaitable receipt."""

    def append(self, event: AuditEvent) -> Awaitable[AuditEvent]: ...


class Committable(Protocol):
    """A receipt that gives the event's seq once it is durable (``Receipt.committed``)."""

    def committed(self) -> Awaitable[int]: ...


class PreparedAppender(AuditAppender, Protocol):
    """The audit log as the receiver uses it with parsing processes: it also takes events
    encoded already (``AuditLog.append_prepared``), whose receipts give only the seq."""

    def append_prepared(self, prepared: Prepared) -> Committable: ...


@dataclass(frozen=True, slots=True)
class ReceiverOptions:
    """Bounds of the receiver: message size, queue, events the writer holds in flight
    (``batch``), retry delay."""

    max_message_bytes: int = 64 * 1024
    queue_size: int = 10_000
    # Not large on purpose: parsed events waiting for the log are what the garbage
    # collector walks, and with 1,000 in flight they were promoted and walked on every full
    # collection (TLS bench: GC 1.8 s per 20,000 messages; 0.8 s with 256, 0.2 s with 64).
    # Smaller still costs the log more commits (its writer thread: +40 % CPU with 64).
    batch: int = 256
    retry_seconds: float = 1.0


@dataclass
class Counters:
    """What ``/metrics`` and ``/healthz`` show; monotonic except ``queue_depth``."""

    received: int = 0  # messages (and rejected fragments) taken from the network
    durable: int = 0  # events committed to the audit log (accepted and rejected alike)
    quarantined: int = 0  # messages rejected into the quarantine
    udp_dropped: int = 0  # datagrams dropped because the queue was full
    connections: int = 0  # TLS connections accepted
    tls_failures: int = 0  # handshakes refused (no or a wrong client certificate, not TLS)
    closed_lying: int = 0  # connections closed for a frame length that lied
    log_retries: int = 0  # batches the audit log refused (retried)
    parser_restarts: int = 0  # times a parsing process died (or hung) and the processes were started again
    queue_depth: int = 0

    def snapshot(self) -> dict[str, int]:
        return {
            "received": self.received,
            "durable": self.durable,
            "quarantined": self.quarantined,
            "udp_dropped": self.udp_dropped,
            "connections": self.connections,
            "tls_failures": self.tls_failures,
            "closed_lying": self.closed_lying,
            "log_retries": self.log_retries,
            "parser_restarts": self.parser_restarts,
            "queue_depth": self.queue_depth,
        }


def rejected_event(item: Quarantined, quarantine_id: int | None) -> AuditEvent:
    """The ``external.rejected`` event recording one quarantined message."""
    ip = item.peer.rsplit(":", 1)[0] if item.peer and ":" in item.peer else item.peer
    provenance = Provenance(
        source=item.source or item.peer or "unknown",
        transport=item.transport,
        received_at=item.received_at,
        format="unknown",
        peer=item.peer,
        digest=digest(item.raw),
    )
    event = AuditEvent(
        type="external.rejected",
        occurred_at=item.received_at,
        outcome=Outcome.FAILURE,
        actor=Actor(ip=ip),
        detail={
            "reason": item.reason,
            "description": item.message,
            "size": item.size,
            "quarantine_id": quarantine_id,
        },
    )
    return attach(event, provenance)


_Item = Arrival | Quarantined


_Parsed = AuditEvent | Prepared  # Prepared: made by a parsing process
_Receipts = list[tuple[_Parsed, Any]]  # the event and its receipt (``None``: refused at once)


@dataclass
class _Job:
    """Queue items taken together, and the ticket of their arrivals if they were sent to
    the parsing processes (``None``: parsed here)."""

    items: list[_Item]
    arrivals: list[Arrival]
    ticket: Ticket | None


@dataclass
class _InFlight:
    """Queue items appended to the log, with their receipts."""

    items: int
    receipts: _Receipts


class Receiver:
    """Queues messages (bounded), parses them and writes the events to the audit log."""

    def __init__(
        self,
        log: AuditAppender,
        store: IngestStore,
        clock: Clock,
        options: ReceiverOptions | None = None,
        parser: ParserPool | None = None,
    ) -> None:
        """With ``parser``, messages are parsed in its processes (started and stopped with
        the receiver) and ``log`` must be a ``PreparedAppender``; without, in this one.

        Raises ``IngestError`` if ``parser`` is given and ``log`` takes no prepared events.
        """
        if parser is not None and not hasattr(log, "append_prepared"):
            raise IngestError("parsing processes need an audit log that takes prepared events")
        self.log = log
        self.parser = parser
        self.store = store
        self.clock = clock
        self.options = options or ReceiverOptions()
        self.counters = Counters()
        self.queue: asyncio.Queue[_Item] = asyncio.Queue(self.options.queue_size)
        self._writer: asyncio.Task[None] | None = None

    # -- taking messages -------------------------------------------------------------

    def arrival(self, data: bytes, transport: str, peer: str | None, cert_source: str | None = None) -> Arrival:
        """``data`` stamped with the time it arrived."""
        return Arrival(data, transport, peer, cert_source, self.clock.now())

    def rejected(
        self, raw: bytes, size: int, reason: str, message: str, transport: str, peer: str | None, source: str | None
    ) -> Quarantined:
        """A quarantine entry for input the framing refused (oversized, lying length)."""
        return Quarantined(self.clock.now(), transport, reason, message, size, raw, peer, source)

    async def take(self, data: bytes, transport: str, peer: str | None, cert_source: str | None = None) -> None:
        """Queue one message, waiting while the queue is full (TCP back-pressure)."""
        await self.take_all([self.arrival(data, transport, peer, cert_source)])

    async def take_all(self, items: Iterable[_Item]) -> None:
        """Queue messages and framing rejects in order, waiting only while the queue is
        full (TCP back-pressure): a read of many frames costs one await, not one each."""
        queue = self.queue
        for item in items:
            self._count_in(item)
            if queue.full():
                await queue.put(item)
            else:
                queue.put_nowait(item)
        self.counters.queue_depth = queue.qsize()

    def take_nowait(self, item: _Item) -> bool:
        """Queue one datagram (or its rejection); ``False`` (and counted) if the queue was full."""
        if self.queue.full():
            self.counters.udp_dropped += 1
            return False
        self._count_in(item)
        self.queue.put_nowait(item)
        self.counters.queue_depth = self.queue.qsize()
        return True

    def _count_in(self, item: _Item) -> None:
        self.counters.received += 1
        if isinstance(item, Quarantined):
            self.counters.quarantined += 1

    # -- parsing -------------------------------------------------------------------------

    def event_for(self, arrival: Arrival) -> AuditEvent | Quarantined:
        """The event for one syslog message, or its quarantine entry if it is unusable."""
        return event_for(arrival)

    async def _events(self, job: _Job, later: Iterable[_Job]) -> list[_Parsed]:
        """The events of ``job``'s items: parsed, or recording their rejection (after the
        quarantine row is written). ``later``: the jobs submitted after it."""
        events: list[_Parsed] = []
        for item, parsed in zip(job.items, await self._parsed(job, later), strict=True):
            if not isinstance(parsed, Quarantined):
                events.append(parsed)
                continue
            if parsed is not item:  # rejected by the parser (the framing's are counted in)
                self.counters.quarantined += 1
            events.append(rejected_event(parsed, await self._quarantine(parsed)))
        return events

    def _submit(self, items: list[_Item]) -> _Job:
        """Take ``items`` into a job; with parsing processes, send them their arrivals now."""
        arrivals = [item for item in items if isinstance(item, Arrival)]
        ticket = self.parser.submit(arrivals) if self.parser is not None and arrivals else None
        return _Job(items, arrivals, ticket)

    async def _parsed(self, job: _Job, later: Iterable[_Job]) -> list[_Parsed | Quarantined]:
        """One result per item of ``job``, in order (framing rejects as they are)."""
        if job.ticket is None or self.parser is None:
            return [event_for(item) if isinstance(item, Arrival) else item for item in job.items]
        try:
            results: Sequence[_Parsed | Quarantined] = await self.parser.collect(job.ticket)
        except ParserDied as exc:
            # Restarted, the processes forgot every batch sent: this one is parsed again
            # one message at a time, the later ones are sent again.
            await self._restart(exc)
            results = await self._one_by_one(job.arrivals)
            for other in later:
                other.ticket = self.parser.submit(other.arrivals) if self.parser is not None else None
        parsed = iter(results)
        return [next(parsed) if isinstance(item, Arrival) else item for item in job.items]

    async def _one_by_one(self, arrivals: list[Arrival]) -> list[_Parsed | Quarantined]:
        """``arrivals`` parsed one at a time after a parsing process died: one it dies on
        again is quarantined, the others are parsed. Nothing taken is lost."""
        results: list[_Parsed | Quarantined] = []
        for arrival in arrivals:
            if self.parser is None:  # could not be restarted: parse here
                results.append(event_for(arrival))
                continue
            try:
                results.extend(await self.parser.parse([arrival]))
            except ParserDied as exc:
                await self._restart(exc)
                results.append(arrival.quarantined("internal-error", "the parsing process died on this message"))
        return results

    async def _restart(self, exc: ParserDied) -> None:
        """Start the parsing processes again (or, if they cannot start, parse here from now on)."""
        assert self.parser is not None
        self.counters.parser_restarts += 1
        log.error("ATNA receiver: %s; starting the parsing processes again", exc)
        try:
            await self.parser.restart()
        except (OSError, ParserDied) as error:
            log.error("ATNA receiver: the parsing processes cannot start (%s); parsing in this process", error)
            self.parser = None

    # -- the writer ------------------------------------------------------------------

    async def open(self) -> None:
        """Start the parsing processes (if any; waiting until they are ready), then the writer."""
        if self.parser is not None and not self.parser.started:
            await self._start_parser(self.parser)
        self.start()

    def start(self) -> None:
        """Start the writer task in the running loop (``open`` starts the parsing
        processes first)."""
        if self._writer is None:
            self._writer = asyncio.get_running_loop().create_task(self._run(), name="ingest-writer")

    async def drained(self) -> None:
        """Wait until everything queued so far is durable (or quarantined and recorded)."""
        await self.queue.join()

    async def stop(self, timeout: float = 30.0) -> None:
        """Write what is queued (waiting at most ``timeout`` seconds if the log refuses),
        then stop the writer and the parsing processes; what could not be written is
        logged as lost."""
        if self._writer is None:
            return
        try:
            await asyncio.wait_for(self.drained(), timeout)
        except TimeoutError:
            log.error("ATNA receiver stopped with %d messages not written to the audit log", self.queue.qsize())
        self._writer.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._writer
        self._writer = None
        if self.parser is not None:
            await self.parser.close()

    async def _run(self) -> None:
        """Take, parse and append up to half a batch while the log commits the half
        before; confirm a half once the other is appended, or as soon as nothing waits.
        With parsing processes, the next half is sent to them before this one is
        appended, so that they parse while this task appends and confirms."""
        half = max(1, self.options.batch // 2)
        flying: deque[_InFlight] = deque()
        held = 0  # events in flight
        parsing: deque[_Job] = deque()  # taken from the queue, not appended yet
        while True:
            while flying and (self.queue.empty() or held + half > self.options.batch):
                done = flying.popleft()
                held -= done.items
                await self._confirm(done)
            if not parsing:
                items = [await self.queue.get()]
                parsing.append(self._submit(self._take(items, half)))
            while self.parser is not None and len(parsing) < 2 and not self.queue.empty():
                parsing.append(self._submit(self._take([], half)))
            job = parsing.popleft()
            try:
                flying.append(_InFlight(len(job.items), self._append(await self._events(job, parsing))))
            except BaseException:
                self._done(len(job.items) + sum(len(j.items) for j in parsing))
                raise
            held += len(job.items)

    def _take(self, items: list[_Item], half: int) -> list[_Item]:
        """``items`` and what else the queue holds, up to ``half`` items."""
        while len(items) < half and not self.queue.empty():
            items.append(self.queue.get_nowait())
        return items

    async def _confirm(self, flight: _InFlight) -> None:
        """Await the receipts, retrying what the log refused until it takes it."""
        try:
            refused = await self._receipts(flight.receipts)
            while refused:
                self.counters.log_retries += 1
                await asyncio.sleep(self.options.retry_seconds)
                refused = await self._receipts(self._append(refused))
        finally:
            self._done(flight.items)

    async def _start_parser(self, parser: ParserPool) -> None:
        """Start the parsing processes; if they cannot start, parse in this process instead."""
        try:
            await parser.start()
        except (OSError, ParserDied) as exc:
            log.error("ATNA receiver: the parsing processes cannot start (%s); parsing in this process", exc)
            self.parser = None

    def _done(self, items: int) -> None:
        for _ in range(items):
            self.queue.task_done()
        self.counters.queue_depth = self.queue.qsize()

    async def _quarantine(self, item: Quarantined) -> int | None:
        try:
            return await asyncio.to_thread(self.store.quarantine, item)
        except IngestError as exc:  # the event still records the rejection
            log.error("quarantine row lost: %s", exc)
            return None

    def _append(self, events: list[_Parsed]) -> _Receipts:
        """Append all without waiting; a ``None`` receipt: the log refused at once."""
        receipts: _Receipts = []
        log = self.log
        for event in events:
            try:
                if isinstance(event, Prepared):
                    receipts.append((event, cast(PreparedAppender, log).append_prepared(event)))
                else:
                    receipts.append((event, log.append(event)))
            except AuditUnavailable:
                receipts.append((event, None))
        return receipts

    async def _receipts(self, receipts: _Receipts) -> list[_Parsed]:
        """Await all; returns the events the log refused (to retry)."""
        refused: list[_Parsed] = []
        for event, receipt in receipts:
            try:
                if receipt is None:
                    raise AuditUnavailable("the audit log is closed")
                # A prepared event's receipt gives only its seq: the event is not rebuilt.
                await (receipt.committed() if isinstance(event, Prepared) else receipt)
            except AuditUnavailable as exc:
                log.warning("audit log refused an ingested event: %s", exc)
                refused.append(event)
            else:
                self.counters.durable += 1
        return refused

    def stats(self) -> dict[str, int]:
        """The counters now (``queue_depth`` fresh)."""
        self.counters.queue_depth = self.queue.qsize()
        return self.counters.snapshot()
