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
import logging
import queue
import threading
import time
from collections.abc import Generator, Sequence
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
from pacsguard.audit.store import AuditStore, db_reason, to_us
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


class Receipt:
    """The promise that an appended event becomes durable; ``result()`` or ``await`` it."""

    __slots__ = ("_future", "_prepared")

    def __init__(self, prepared: Prepared, future: Future[int]) -> None:
        self._prepared = prepared
        self._future = future

    def result(self, timeout: float | None = None) -> AuditEvent:
        """Wait until the event is committed; returns it (as recorded) with its ``seq``.

        Raises ``AuditUnavailable`` if it could not be written.
        """
        return self._prepared.recorded(self._future.result(timeout))

    def done(self) -> bool:
        return self._future.done()

    def __await__(self) -> Generator[Any, None, AuditEvent]:
        return self._wait().__await__()

    async def _wait(self) -> AuditEvent:
        return self._prepared.recorded(await asyncio.wrap_future(self._future))


@dataclass(slots=True)
class _Append:
    prepared: Prepared
    future: Future[int]


@dataclass(slots=True)
class _SignNow:
    future: Future[SignedHead]


_STOP = object()


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
        self._edge = self.store.load_edge()
        try:
            last = self.store.latest_head()
        except SQLAlchemyError as exc:
            raise AuditUnavailable(f"the audit heads cannot be read: {db_reason(exc)}") from exc
        self._head_size = last.size if last else 0
        self._head_time = last.timestamp if last else self.clock.now()
        self._health = Health("healthy", None, self.clock.now())
        self._reload = False
        self._queue: queue.Queue[object] = queue.Queue(self.options.queue_limit)
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="audit-writer", daemon=True)
        self._thread.start()

    # -- the caller's side ---------------------------------------------------------

    def append(self, event: AuditEvent) -> Receipt:
        """Queue ``event``; the receipt resolves once it is committed.

        Raises ``AuditUnavailable`` at once if the log is closed.
        """
        prepared = prepare(event, self.options.limits)
        future: Future[int] = Future()
        self._put(_Append(prepared, future))
        return Receipt(prepared, future)

    def emit(self, event: AuditEvent) -> None:
        """``EventSink``: record ``event`` and wait until it is durable; raises ``AuditUnavailable``."""
        self.append(event).result()

    def sign_head(self) -> SignedHead:
        """Make, store and witness a signed head now; raises ``AuditError`` without a key."""
        if self._key is None:
            raise AuditError("no signing key configured: cannot sign a tree head")
        future: Future[SignedHead] = Future()
        self._put(_SignNow(future))
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

    def close(self) -> None:
        """Commit what is queued, then stop the writer."""
        if self._closed:
            return
        self._closed = True
        self._queue.put(_STOP)
        self._thread.join()

    def __enter__(self) -> AuditLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _put(self, item: object) -> None:
        if self._closed or not self._thread.is_alive():
            raise AuditUnavailable("the audit log is closed")
        self._queue.put(item)

    # -- the writer thread -----------------------------------------------------------

    def _run(self) -> None:
        stop = False
        while not stop:
            try:
                first = self._queue.get(timeout=self._idle_timeout())
            except queue.Empty:
                self._commit([])
                continue
            batch: list[object] = [first]
            self._drain(batch)
            if 1 < len(batch) < self.options.max_batch and self.options.gather_seconds > 0:
                # Concurrent callers: the ones just released are still re-submitting; a
                # moment's wait lets one commit (one fsync) carry all of them.
                time.sleep(self.options.gather_seconds)
                self._drain(batch)
            stop = any(item is _STOP for item in batch)
            self._commit([item for item in batch if item is not _STOP])

    def _drain(self, batch: list[object]) -> None:
        while len(batch) < self.options.max_batch:
            try:
                batch.append(self._queue.get_nowait())
            except queue.Empty:
                return

    def _idle_timeout(self) -> float | None:
        pending = self._key is not None and self._edge.size > self._head_size
        return self.options.head_every_seconds if pending else None

    def _commit(self, batch: list[object]) -> None:
        appends = [item for item in batch if isinstance(item, _Append)]
        signs = [item for item in batch if isinstance(item, _SignNow)]
        try:
            if self._reload:
                self._edge = self.store.load_edge()
                self._reload = False
            edge = self._edge.copy()
            rows, nodes = _rows(appends, edge)
            head = self._maybe_head(edge, force=bool(signs))
            if rows or head is not None:
                self.store.append(rows, nodes, head)
        except Exception as exc:  # the writer must survive anything; callers get AuditUnavailable
            self._fail(appends, signs, exc)
            return
        self._edge = edge
        if self._health.state != "healthy":
            self._health = Health("healthy", None, self.clock.now())
        for item, row in zip(appends, rows, strict=True):
            item.future.set_result(row[0])
        if head is not None:
            self._head_size, self._head_time = head.size, head.timestamp
            self._push(head)
            for sign in signs:
                sign.future.set_result(head)

    def _maybe_head(self, edge: merkle.RightEdge, *, force: bool) -> SignedHead | None:
        if self._key is None:
            return None
        now = self.clock.now()
        due = edge.size > self._head_size and (
            edge.size - self._head_size >= self.options.head_every_events
            or (now - self._head_time).total_seconds() >= self.options.head_every_seconds
        )
        return sign_head(edge.size, edge.root(), now, self._key) if force or due else None

    def _fail(self, appends: list[_Append], signs: list[_SignNow], exc: Exception) -> None:
        reason = db_reason(exc) if not isinstance(exc, AuditError) else str(exc)
        log.error("audit log write failed: %s", reason)
        self._health = Health("failing", reason, self.clock.now())
        self._reload = True
        error = AuditUnavailable(f"the audit log cannot record events: {reason}")
        for item in appends:
            item.future.set_exception(error)
        for sign in signs:
            sign.future.set_exception(error)

    def _push(self, head: SignedHead) -> None:
        for witness in self._witnesses:
            try:
                witness.push(head)
            except OSError as exc:
                log.warning("witness %r refused head %d: %s", witness, head.size, exc)
                self._health = Health(self._health.state, self._health.reason, self._health.since, str(exc))


def _rows(appends: list[_Append], edge: merkle.RightEdge) -> tuple[list[tuple[Any, ...]], list[tuple[int, int, bytes]]]:
    """The rows of ``EVENT_COLUMNS`` for a batch, and the tree nodes it completes."""
    rows: list[tuple[Any, ...]] = []
    nodes: list[tuple[int, int, bytes]] = []
    for item in appends:
        seq = edge.size
        data = item.prepared.canonical(seq)
        leaf = merkle.leaf_hash(data)
        nodes.extend(edge.append(leaf))
        event = item.prepared.event
        actor, objects = event.actor, event.objects
        rows.append(
            (
                seq,
                to_us(event.occurred_at),
                event.type,
                event.outcome.value,
                actor.principal_id,
                actor.ip,
                objects.patient_id,
                objects.study_uid,
                leaf,
                data,
            )
        )
    return rows, nodes
