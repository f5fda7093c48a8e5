"""The receiver's parsing processes: raw syslog messages in, encoded events out.

Parsing one ATNA message costs ~150 µs of Python (lxml, the A.5 walk, the mapping, the
provenance) and encoding its event ~20 µs more; in the receiving process that work
shares one GIL with TLS, framing and the audit log's writer. ``ParserPool`` runs it in
processes of their own (``main`` here, each in a new interpreter; two by default), so
that the other cores do it. The receiver sends each batch of arrivals down the
children's stdin (a part to each) and reads from their stdout one result per arrival,
in the same order: the event's canonical parts (``canonical.Prepared.parts``, encoded
with the audit log's ``Limits``: the log only numbers, hashes and inserts them) or the
reason it was rejected.

Each direction is a stream of frames: a 4-byte big-endian length, then MessagePack
(msgspec: plain values only, read back against their types; no pickle). A child
ignores SIGINT (the receiver stops it by closing its stdin, after the last batch) and
exits when its stdin ends, so it does not outlive the receiver.

If a child dies or stops answering (``timeout``), ``collect`` raises ``ParserDied``;
the receiver restarts the children (``restart``) and sends the batch again one arrival
at a time, so that an arrival a child dies on again is quarantined alone (``receiver``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys
from collections.abc import Coroutine, Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO

import msgspec

import pacsguard
from pacsguard.audit.canonical import Columns, Limits, Prepared, prepare
from pacsguard.collector import few_collections
from pacsguard.domain import AuditEvent
from pacsguard.errors import IngestError, ParserDied
from pacsguard.ingest.parsing import Arrival, event_for
from pacsguard.ingest.store import Quarantined

__all__ = ["ParserPool", "Ticket", "main"]

log = logging.getLogger(__name__)

_LENGTH = 4
_Sent = tuple[bytes, str, str | None, str | None, datetime]  # an Arrival's fields
_Parts = tuple[bytes, bytes, int, Columns]  # Prepared.parts()
_Refused = tuple[str, str]  # reason, message
_ENCODER = msgspec.msgpack.Encoder()
_ARRIVALS = msgspec.msgpack.Decoder(list[_Sent])
_RESULTS = msgspec.msgpack.Decoder(list[list[Any]])  # each a _Parts or a _Refused (columns: a list)
_STOP_SECONDS = 10.0
_START_SECONDS = 60.0  # at least this long to start (imports), whatever the batch timeout
# The child's command (``python -c``): not ``-m``, since the package imports this module.
_CHILD = "import sys; from pacsguard.ingest.worker import main; sys.exit(main(sys.argv[1:]))"


Ticket = list[tuple["_Child", Sequence[Arrival]]]
"""A submitted batch: the part each process was sent."""


class ParserPool:
    """The parsing processes as the receiver's writer task uses them (one caller at a time).

    Each batch is cut into one contiguous part per process, parsed side by side, and the
    results joined in order: with two processes, parsing alone no longer bounds the rate
    to what one core does (on two cores, TLS, the log and parsing then share both).
    Batches may be submitted ahead (``submit``) and collected later, in the order they
    were submitted (``collect``), so that a process never waits for the receiver to
    take its results before it starts on the next batch.
    """

    def __init__(self, limits: Limits, processes: int = 2, *, timeout: float = 60.0) -> None:
        if processes < 1:
            raise IngestError("a parser pool needs at least one process")
        self.timeout = timeout  # seconds a batch may take before a process counts as hung
        self._children = [_Child(limits, timeout) for _ in range(processes)]

    @property
    def pids(self) -> list[int]:
        """The running processes' ids."""
        return [c.pid for c in self._children if c.pid is not None]

    @property
    def started(self) -> bool:
        return any(c.pid is not None for c in self._children)

    async def start(self) -> None:
        """Start every process and wait until all are ready; raises ``ParserDied`` (or
        ``OSError``) if one cannot be started (the others are stopped again)."""
        try:
            await _all(c.start() for c in self._children)
        except (OSError, ParserDied):
            await self.close(kill=True)
            raise

    def submit(self, arrivals: Sequence[Arrival]) -> Ticket:
        """Send ``arrivals`` to be parsed (a part to each process); ``collect`` the ticket."""
        n = len(self._children)
        size = max(1, -(-len(arrivals) // n))  # parts of at most this many, the last maybe shorter
        parts = [arrivals[i : i + size] for i in range(0, len(arrivals), size)]
        ticket = list(zip(self._children, parts, strict=False))
        for child, part in ticket:
            child.send(part)
        return ticket

    async def collect(self, ticket: Ticket) -> list[Prepared | Quarantined]:
        """One result per arrival of the oldest ticket not collected yet, in order; raises
        ``ParserDied`` if a process died or hung (``restart`` then, which drops every
        ticket not collected: submit their arrivals again)."""
        results = await asyncio.gather(*(child.receive(part) for child, part in ticket), return_exceptions=True)
        out: list[Prepared | Quarantined] = []
        for result in results:
            if isinstance(result, BaseException):
                raise result
            out.extend(result)
        return out

    async def parse(self, arrivals: Sequence[Arrival]) -> list[Prepared | Quarantined]:
        """``submit`` then ``collect``: nothing else may be in flight."""
        return await self.collect(self.submit(arrivals))

    async def restart(self) -> None:
        """Stop every process (killed) and start them again: what was submitted and not
        collected is dropped."""
        await self.close(kill=True)
        await self.start()

    async def close(self, *, kill: bool = False) -> None:
        """Stop every process: its stdin closed (it finishes and exits), or killed."""
        await _all(c.close(kill=kill) for c in self._children)


async def _all(coroutines: Iterable[Coroutine[Any, Any, None]]) -> None:
    """Run side by side; the first exception, after all have ended."""
    for result in await asyncio.gather(*coroutines, return_exceptions=True):
        if isinstance(result, BaseException):
            raise result


class _Child:
    """One parsing process."""

    def __init__(self, limits: Limits, timeout: float) -> None:
        self.limits = limits
        self.timeout = timeout  # seconds a batch may take before the child counts as hung
        self._process: asyncio.subprocess.Process | None = None

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    async def start(self) -> None:
        """Start the child and wait until it is ready (its imports done); raises
        ``ParserDied`` (or ``OSError``) if it cannot be started."""
        env = dict(os.environ)
        # The child must run this very code, whatever sys.path the parent was given.
        here = str(Path(pacsguard.__file__).resolve().parents[1])
        env["PYTHONPATH"] = os.pathsep.join(p for p in (here, env.get("PYTHONPATH")) if p)
        limits = self.limits
        self._process = process = await asyncio.create_subprocess_exec(
            sys.executable, "-c", _CHILD,
            str(limits.max_detail_bytes), str(limits.max_string), str(limits.max_type),
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, env=env,
        )  # fmt: skip
        assert process.stdout is not None
        try:  # the child's first frame, empty, says it is ready
            async with asyncio.timeout(max(self.timeout, _START_SECONDS)):
                ready = await process.stdout.readexactly(_LENGTH)
        except (OSError, asyncio.IncompleteReadError, TimeoutError) as exc:
            await self.close(kill=True)
            raise ParserDied(f"the parsing process did not start: {type(exc).__name__}") from exc
        if ready != bytes(_LENGTH):
            await self.close(kill=True)
            raise ParserDied("the parsing process did not start: unexpected output")

    def send(self, arrivals: Sequence[Arrival]) -> None:
        """Write one batch to the child (buffered; a dead child shows in ``receive``)."""
        process = self._process
        if process is None or process.stdin is None:
            return
        data = _ENCODER.encode([(a.data, a.transport, a.peer, a.cert_source, a.received_at) for a in arrivals])
        process.stdin.write(len(data).to_bytes(_LENGTH, "big") + data)

    async def receive(self, arrivals: Sequence[Arrival]) -> list[Prepared | Quarantined]:
        """The results of the oldest batch sent and not received, ``arrivals``; raises ``ParserDied``."""
        process = self._process
        if process is None or process.stdin is None or process.stdout is None:
            raise ParserDied("the parsing process is not running")
        try:
            async with asyncio.timeout(self.timeout):
                await process.stdin.drain()
                size = int.from_bytes(await process.stdout.readexactly(_LENGTH), "big")
                results = _RESULTS.decode(await process.stdout.readexactly(size))
        except (OSError, asyncio.IncompleteReadError, TimeoutError, msgspec.DecodeError) as exc:
            raise ParserDied(f"the parsing process died: {type(exc).__name__}") from exc
        if len(results) != len(arrivals):
            raise ParserDied(f"the parsing process answered {len(results)} results for {len(arrivals)} messages")
        return [_result(a, r) for a, r in zip(arrivals, results, strict=True)]

    async def close(self, *, kill: bool = False) -> None:
        """Stop the child: its stdin closed (it finishes and exits), or killed."""
        process, self._process = self._process, None
        if process is None:
            return
        if kill and process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
        if process.stdin is not None:
            process.stdin.close()
            with contextlib.suppress(OSError):
                await process.stdin.wait_closed()
        try:
            await asyncio.wait_for(process.wait(), _STOP_SECONDS)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            await process.wait()


def _result(arrival: Arrival, result: list[Any]) -> Prepared | Quarantined:
    if len(result) == 2:
        reason, message = result
        return arrival.quarantined(reason, message)
    head, type_json, occurred_us, columns = result
    return Prepared.from_parts(head, type_json, occurred_us, tuple(columns))


# -- the child ---------------------------------------------------------------------------


def parse_one(sent: _Sent, limits: Limits) -> _Parts | _Refused:
    """The child's work for one arrival."""
    arrival = Arrival(*sent)
    parsed = event_for(arrival)
    if isinstance(parsed, Quarantined):
        return parsed.reason, parsed.message
    try:
        return prepare(parsed, limits).parts()
    except Exception as exc:  # prepare never fails on bad input; a bug: quarantine the one message
        log.exception("an ingested event could not be encoded")
        return "internal-error", f"internal error: {type(exc).__name__}"


def serve(inp: BinaryIO, out: BinaryIO, limits: Limits) -> None:
    """Say ready (an empty frame), then answer batches from ``inp`` on ``out`` until ``inp`` ends."""
    prepare(AuditEvent("external.other", datetime.now(UTC), detail={"warm": "up"}), limits)  # builds its reader (25 ms)
    out.write(bytes(_LENGTH))
    out.flush()
    while True:
        head = inp.read(_LENGTH)
        if len(head) < _LENGTH:
            return
        size = int.from_bytes(head, "big")
        body = inp.read(size)
        if len(body) < size:
            return
        results = [parse_one(sent, limits) for sent in _ARRIVALS.decode(body)]
        data = _ENCODER.encode(results)
        out.write(len(data).to_bytes(_LENGTH, "big") + data)
        out.flush()


def main(argv: Sequence[str]) -> int:
    """The child's entry point: ``LIMITS`` (max_detail_bytes max_string max_type) as arguments."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C stops the receiver, which stops us
    limits = Limits(*(int(a) for a in argv[:3]))
    out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # a stray print goes to stderr, never into the results
    logging.basicConfig(level=logging.WARNING, format="pacsguard ingest worker: %(levelname)s %(message)s")
    with few_collections(), os.fdopen(0, "rb") as inp, out:
        serve(inp, out, limits)
    return 0
