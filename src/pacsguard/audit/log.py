"""``AuditLog``: the durable, tamper-evident event sink, with one writer thread and group commit.

Callers hand events to ``append`` (which returns a ``Receipt``) or ``emit`` (which waits).
A single writer thread takes everything queued, numbers it, extends the Merkle tree,
and commits the whole batch (events, new tree nodes, maybe a signed head) in one
transaction; only then are the receipts resolved. A kill -9 therefore loses nothing
that was acknowledged, and leaves nothing half-written (the transaction is atomic).

If the database refuses, every waiting receipt raises ``AuditUnavailable`` (callers
must then refuse the request: fail closed) and ``health`` says ``failing`` with the
reason until a later batch commits.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import threading
from collections import deque
from collections.abc import Callable, Generator, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from pacsguard.audit import merkle
from pacsguard.audit.canonical import Limits, Prepared, prepare
from pacsguard.audit.heads import SignedHead, sign_head
from pacsguard.audit.search import AuditPage, AuditQuery, search
from pacsguard.audit.store import AuditStore, Companion, db_reason
from pacsguard.audit.witness import Witness
from pacsguard.clock import Clock, SystemClock
from pacsguard.domain.events import Actor, AuditEvent
from pacsguard.errors import AuditError, AuditUnavailable

__all__ = ["AuditLog", "AuditOptions", "Health", "Receipt"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class AuditOptions:
    """How the log batches and when it signs heads (needs a signing key)."""

    head_every_events: int = 1000
    head_every_seconds: float = 60.0
    max_batch: int = 5000
    gather_seconds: float = 0.001  # when several callers are active, wait this long to fill a batch
    queue_limit: int = 100_000
    limits: Limits = field(default_factory=Limits)


@dataclass(frozen=True, slots=True)
class Health:
    """What ``/healthz`` and the monitor read: ``healthy`` or ``failing`` with a reason."""

    state: Literal["healthy", "failing"]
    reason: str | None
    since: datetime
    witness_error: str | None = None


class _Batch:
    """The events appended while the writer was busy: committed together, one future for all.

    Callers block on the one future (its result is the first event's seq) rather than
    on a future each: a batch of fifty costs one future and one wake-up broadcast.
    """

    __slots__ = ("companions", "errors", "future", "items", "loops", "prepared")

    def __init__(self) -> None:
        self.items: list[AuditEvent | Prepared] = []  # Prepared: encoded by the caller already
        self.prepared: list[Prepared] = []  # filled by the writer: the items that encoded
        self.errors: dict[int, AuditUnavailable] = {}  # index -> why that event was refused
        self.future: Future[int] = Future()
        self.loops: dict[asyncio.AbstractEventLoop, asyncio.Future[int]] = {}
        self.companions: dict[int, Companion] | None = None  # item index -> its companion row

    def companion_rows(self, first: int) -> dict[tuple[str, tuple[str, ...]], list[tuple[Any, ...]]]:
        """The items' companion rows by table, each with its event's seq (``first`` + slot)."""
        grouped: dict[tuple[str, tuple[str, ...]], list[tuple[Any, ...]]] = {}
        for index, (table, columns, values) in (self.companions or {}).items():
            grouped.setdefault((table, columns), []).append((*values, first + self.slot(index)))
        return grouped

    def awaitable(self) -> asyncio.Future[int]:
        """The batch's future in the running event loop: one per loop, not one per caller.

        (Each ``wrap_future`` costs a thread-safe wake-up of the loop when the batch
        commits.) Callers ``shield`` it, so cancelling one caller cancels no other.
        """
        loop = asyncio.get_running_loop()
        wrapped = self.loops.get(loop)
        if wrapped is None:
            wrapped = self.loops[loop] = asyncio.wrap_future(self.future, loop=loop)
        return wrapped

    def recorded(self, first: int, index: int) -> AuditEvent:
        slot = self.slot(index)
        return self.prepared[slot].recorded(first + slot)

    def slot(self, index: int) -> int:
        """Where item ``index`` stands among the encoded events (its seq is ``first`` plus
        this); raises the refusal if that event could not be encoded."""
        if not self.errors:  # nearly always: every event of the batch encoded
            return index
        error = self.errors.get(index)
        if error is not None:
            raise error
        return index - sum(1 for i in self.errors if i < index)  # refused events take no seq


class Receipt:
    """The promise that an appended event becomes durable; ``result()`` or ``await`` it."""

    __slots__ = ("_batch", "_index")

    def __init__(self, batch: _Batch, index: int) -> None:
        self._batch = batch
        self._index = index

    def result(self, timeout: float | None = None) -> AuditEvent:
        """Wait until the event is committed; returns it (as recorded) with its ``seq``.

        Raises ``AuditUnavailable`` if it could not be written.
        """
        return self._batch.recorded(self._batch.future.result(timeout), self._index)

    def seq(self, timeout: float | None = None) -> int:
        """Wait as ``result`` does; only the sequence number (the event is not rebuilt:
        a bulk import needs no more)."""
        return self._batch.future.result(timeout) + self._batch.slot(self._index)

    def done(self) -> bool:
        return self._batch.future.done()

    async def committed(self) -> int:
        """Wait as ``await`` does; only the sequence number (the event is not rebuilt)."""
        batch = self._batch
        first = batch.future.result() if batch.future.done() else await asyncio.shield(batch.awaitable())
        return first + batch.slot(self._index)

    def __await__(self) -> Generator[Any, None, AuditEvent]:
        batch = self._batch
        if batch.future.done():  # a burst's later receipts: no coroutine, no shield
            return batch.recorded(batch.future.result(), self._index)
        first = yield from asyncio.shield(batch.awaitable()).__await__()
        return batch.recorded(first, self._index)


class AuditLog:
    """The audit log of one database; an ``EventSink``. Use as a context manager or ``close()``."""

    def __init__(
        self,
        engine: Engine,
        *,
        signing_key: Ed25519PrivateKey | None = None,
        clock: Clock | None = None,
        options: AuditOptions | None = None,
        witnesses: Sequence[Witness] = (),
    ) -> None:
        """Open the log and start its writer; raises ``AuditUnavailable`` if storage is unreadable."""
        self.store = AuditStore(engine)
        self.clock = clock or SystemClock()
        self.options = options or AuditOptions()
        self._key = signing_key
        self._witnesses = tuple(witnesses)
        self._committed: list[Callable[[int], None]] = []
        self._edge = self.store.load_edge()
        try:
            last = self.store.latest_head()
        except SQLAlchemyError as exc:
            raise AuditUnavailable(f"the audit heads cannot be read: {db_reason(exc)}") from exc
        self._head_size = last.size if last else 0
        self._head_time = last.timestamp if last else self.clock.now()
        self._health = Health("healthy", None, self.clock.now())
        self._reload = False
        self._cond = threading.Condition()  # guards everything below, up to the thread
        self._pending: deque[_Batch] = deque()  # oldest first; the last one is still filling
        self._queued = 0  # events in _pending
        self._signs: list[Future[SignedHead]] = []
        self._want = 0  # the writer waits until the open batch holds this many (0: not waiting)
        self._in_flight = 0  # events queued when the writer last took a batch: how many callers come back
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="audit-writer", daemon=True)
        self._thread.start()

    # -- the caller's side ---------------------------------------------------------

    def append(self, event: AuditEvent) -> Receipt:
        """Queue ``event``; the receipt resolves once it is committed.

        Raises ``AuditUnavailable`` at once if the log is closed.
        """
        return self._queue(event)

    def append_prepared(self, prepared: Prepared, companion: Companion | None = None) -> Receipt:
        """``append`` for an event ``canonical.prepare`` has cleaned and encoded already
        (with this log's ``options.limits``), e.g. in the receiver's parsing process: the
        writer then only numbers, hashes and inserts it. The bytes are not checked again.
        ``companion`` is a row of another table committed with the event (it gets the
        event's seq), in the same transaction.
        """
        return self._queue(prepared, companion)

    def _queue(self, event: AuditEvent | Prepared, companion: Companion | None = None) -> Receipt:
        with self._cond:
            self._check_open()
            while self._queued >= self.options.queue_limit:
                self._cond.wait()
                self._check_open()
            pending = self._pending
            if not pending or len(pending[-1].items) >= self.options.max_batch:
                pending.append(_Batch())
            batch = pending[-1]
            index = len(batch.items)
            batch.items.append(event)
            if companion is not None:
                if batch.companions is None:
                    batch.companions = {}
                batch.companions[index] = companion
            self._queued += 1
            if self._want and index + 1 >= self._want:
                self._cond.notify_all()
        return Receipt(batch, index)

    def emit(self, event: AuditEvent) -> None:
        """``EventSink``: record ``event`` and wait until it is durable; raises ``AuditUnavailable``."""
        self.append(event).result()

    def sign_head(self) -> SignedHead:
        """Make, store and witness a signed head now; raises ``AuditError`` without a key."""
        if self._key is None:
            raise AuditError("no signing key configured: cannot sign a tree head; create one with 'pacsguard pki init'")
        future: Future[SignedHead] = Future()
        with self._cond:
            self._check_open()
            self._signs.append(future)
            self._cond.notify_all()
        return future.result()

    def search(self, query: AuditQuery, *, reader: Actor) -> AuditPage:
        """Search the log as ``reader``; the search itself is recorded (``audit.log.used``).

        Raises ``AuditUnavailable`` if it cannot be recorded or read.
        """
        return search(self.store.engine, query, reader=reader, sink=self, clock=self.clock)

    @property
    def health(self) -> Health:
        return self._health

    @property
    def size(self) -> int:
        """Events committed so far."""
        return self._edge.size

    def root(self) -> bytes:
        """The current tree head hash (unsigned)."""
        return self._edge.root()

    def on_commit(self, listener: Callable[[int], None]) -> None:
        """Call ``listener(size)`` in the writer after each commit of events (the monitor's
        wake-up); it must return at once, and an exception in it is logged, never raised."""
        self._committed.append(listener)

    def close(self) -> None:
        """Commit what is queued, then stop the writer."""
        if self._closed:
            return
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        self._thread.join()

    def __enter__(self) -> AuditLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _check_open(self) -> None:
        if self._closed or not self._thread.is_alive():
            raise AuditUnavailable("the audit log is closed")

    # -- the writer thread -----------------------------------------------------------

    def _run(self) -> None:
        while True:
            batch, signs, stop = self._take()
            self._commit(batch, signs)
            if stop:
                return

    def _take(self) -> tuple[_Batch | None, list[Future[SignedHead]], bool]:
        """Wait for work; the oldest batch (if any), the sign requests, and whether to stop."""
        with self._cond:
            while not self._pending and not self._signs and not self._closed:
                self._want = 1
                woken = self._cond.wait(self._idle_timeout())
                self._want = 0
                if not woken:
                    break  # idle: an empty commit may make a time-based head
            batch = None
            if self._pending:
                target = min(self._in_flight, self.options.max_batch)
                filling = len(self._pending) == 1 and not self._closed and self.options.gather_seconds > 0
                if filling and len(self._pending[0].items) < target:
                    # Concurrent callers: those released by the last commit are still
                    # re-submitting; a moment's wait lets one commit (one fsync) carry them.
                    self._want = target
                    self._cond.wait(self.options.gather_seconds)
                    self._want = 0
                self._in_flight = self._queued
                batch = self._pending.popleft()
                self._queued -= len(batch.items)
                self._cond.notify_all()  # callers waiting for queue space
            signs, self._signs = self._signs, []
            return batch, signs, self._closed and not self._pending

    def _idle_timeout(self) -> float | None:
        pending = self._key is not None and self._edge.size > self._head_size
        return self.options.head_every_seconds if pending else None

    def _commit(self, batch: _Batch | None, signs: list[Future[SignedHead]]) -> None:
        items = self._prepare(batch) if batch is not None else []
        try:
            if self._reload:
                self._edge = self.store.load_edge()
                self._reload = False
            edge = self._edge.copy()
            first = edge.size
            rows, nodes = _rows(items, edge)
            head = self._maybe_head(edge, force=bool(signs))
            if rows or head is not None:
                companions = batch.companion_rows(first) if batch is not None and batch.companions else None
                self.store.append(rows, nodes, head, companions)
        except Exception as exc:  # the writer must survive anything; callers get AuditUnavailable
            self._fail(batch, signs, exc)
            return
        self._edge = edge
        if self._health.state != "healthy":
            self._health = Health("healthy", None, self.clock.now())
        if batch is not None:
            batch.future.set_result(first)
            for listener in self._committed:
                _notify(listener, edge.size)
        if head is not None:
            self._head_size, self._head_time = head.size, head.timestamp
            self._push(head)
            for sign in signs:
                sign.set_result(head)

    def _prepare(self, batch: _Batch) -> list[Prepared]:
        """Clean and encode the batch's events here, in the writer: the callers only queue.

        One thread doing all the CPU work avoids fifty threads contending for the GIL
        with the writer (which had to win it back after every database call).
        """
        limits = self.options.limits
        for index, event in enumerate(batch.items):
            if isinstance(event, Prepared):
                batch.prepared.append(event)
                continue
            try:
                batch.prepared.append(prepare(event, limits))
            except Exception as exc:  # prepare never fails on bad input; this is a bug: refuse the one event
                log.exception("audit event %r could not be encoded", getattr(event, "type", None))
                batch.errors[index] = AuditUnavailable(f"the audit log cannot encode this event: {exc}")
        return batch.prepared

    def _maybe_head(self, edge: merkle.RightEdge, *, force: bool) -> SignedHead | None:
        if self._key is None:
            return None
        now = self.clock.now()
        due = edge.size > self._head_size and (
            edge.size - self._head_size >= self.options.head_every_events
            or (now - self._head_time).total_seconds() >= self.options.head_every_seconds
        )
        return sign_head(edge.size, edge.root(), now, self._key) if force or due else None

    def _fail(self, batch: _Batch | None, signs: list[Future[SignedHead]], exc: Exception) -> None:
        reason = db_reason(exc) if not isinstance(exc, AuditError) else str(exc)
        log.error("audit log write failed: %s", reason)
        self._health = Health("failing", reason, self.clock.now())
        self._reload = True
        error = AuditUnavailable(f"the audit log cannot record events: {reason}")
        if batch is not None:
            batch.future.set_exception(error)
        for sign in signs:
            sign.set_exception(error)

    def _push(self, head: SignedHead) -> None:
        for witness in self._witnesses:
            try:
                witness.push(head)
            except OSError as exc:
                log.warning("witness %r refused head %d: %s", witness, head.size, exc)
                self._health = Health(self._health.state, self._health.reason, self._health.since, str(exc))


def _rows(items: list[Prepared], edge: merkle.RightEdge) -> tuple[list[tuple[Any, ...]], list[tuple[int, int, bytes]]]:
    """The rows of ``EVENT_COLUMNS`` for a batch, and the tree nodes it completes.

    One tight loop per event (this is the writer's hot path): the canonical bytes by one
    ``%`` format, the leaf hash inlined, the row tuple built positionally.
    """
    rows: list[tuple[Any, ...]] = []
    nodes: list[tuple[int, int, bytes]] = []
    add_row, add_nodes, grow, sha256 = rows.append, nodes.extend, edge.append, hashlib.sha256
    seq = edge.size
    for prepared in items:
        data = b'%s,"seq":%d,"type":%s}' % (prepared.head, seq, prepared.type_json)  # Prepared.canonical
        leaf = sha256(b"\x00" + data).digest()  # merkle.leaf_hash
        finished = grow(leaf)
        if finished:
            add_nodes(finished)
        add_row((seq, prepared.occurred_us, *prepared.columns, leaf, data))
        seq += 1
    return rows, nodes


def _notify(listener: Callable[[int], None], size: int) -> None:
    try:
        listener(size)
    except Exception:  # a listener's bug must not fail the log
        log.exception("audit commit listener failed")
