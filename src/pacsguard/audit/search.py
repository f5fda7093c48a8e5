"""Searching the audit log, with keyset pagination; every search is itself audited.

``search`` first records an ``audit.log.used`` event naming the reader and the query
(durably: if that cannot be recorded, the search is refused), then reads the matching
events in sequence order. The patient, study and actor indexes are ``(bucket, key, seq)``
with ``bucket = seq >> 14`` (``storage.audit_tables``: so that appends stay cheap at any
size), so a search by one of those keys walks the buckets from the cursor's on, one
index range per bucket, and stops when the page is full: "who accessed this patient"
reads only that patient's rows, plus one index probe per 16,384 events of the log (made
inside the database, 256 buckets per statement, when the key is rare). The
time range has its own index; IP, type and outcome are filtered within those (or along
``seq``): their indexes cost every append more than they saved.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BindParameter,
    Column,
    ColumnElement,
    Connection,
    Engine,
    Integer,
    Row,
    Select,
    TextClause,
    bindparam,
    func,
    literal_column,
    select,
    text,
)
from sqlalchemy.exc import SQLAlchemyError

from pacsguard.audit.canonical import decode
from pacsguard.audit.store import db_reason, to_us
from pacsguard.clock import Clock, utc
from pacsguard.domain.events import Actor, AuditEvent, EventSink, JsonValue, Outcome
from pacsguard.errors import AuditIntegrityError, AuditUnavailable
from pacsguard.storage.audit_tables import SEARCH_BUCKET_BITS, audit_events, search_bucket

__all__ = ["MAX_LIMIT", "SKIP_BUCKETS", "AuditPage", "AuditQuery", "search"]

MAX_LIMIT = 1000
SKIP_BUCKETS = 256  # buckets asked at once which hold a key, after an empty one


@dataclass(frozen=True, slots=True)
class AuditQuery:
    """Filters (all optional, combined with AND), a cursor and a page size (1..MAX_LIMIT)."""

    actor: str | None = None
    patient: str | None = None
    study: str | None = None
    ip: str | None = None
    types: Sequence[str] = ()
    outcome: Outcome | None = None
    since: datetime | None = None  # inclusive
    until: datetime | None = None  # exclusive
    after_seq: int | None = None
    limit: int = 100

    def describe(self) -> dict[str, JsonValue]:
        """The query as JSON, for the ``audit.log.used`` record."""
        out: dict[str, JsonValue] = {
            "actor": self.actor,
            "patient": self.patient,
            "study": self.study,
            "ip": self.ip,
            "types": list(self.types) or None,
            "outcome": self.outcome.value if self.outcome else None,
            "since": utc(self.since).isoformat() if self.since else None,
            "until": utc(self.until).isoformat() if self.until else None,
            "after_seq": self.after_seq,
            "limit": self.limit,
        }
        return {k: v for k, v in out.items() if v is not None}


@dataclass(frozen=True, slots=True)
class AuditPage:
    """One page of results, oldest first; pass ``next_after`` as ``after_seq`` for the next."""

    events: tuple[AuditEvent, ...]
    next_after: int | None


def search(engine: Engine, query: AuditQuery, *, reader: Actor, sink: EventSink, clock: Clock) -> AuditPage:
    """Record that ``reader`` searched the log, then return one page of matching events.

    Raises ``AuditUnavailable`` if the search cannot be recorded or the log cannot be read,
    ``AuditIntegrityError`` if a stored event is not a canonical event any more.
    """
    limit = max(1, min(query.limit, MAX_LIMIT))
    sink.emit(AuditEvent("audit.log.used", clock.now(), actor=reader, detail={"query": query.describe()}))
    conditions = _conditions(query)
    try:
        with engine.connect() as conn:
            key = _key(query)
            if key is None:
                rows = conn.execute(_page(conditions, limit + 1)).all()
            else:
                rows = _bucket_by_bucket(conn, key, conditions, query.after_seq, limit + 1)
    except SQLAlchemyError as exc:
        raise AuditUnavailable(f"the audit log cannot be read: {db_reason(exc)}") from exc
    events = tuple(_event(int(row[0]), row[1]) for row in rows[:limit])
    return AuditPage(events, int(rows[limit - 1][0]) if len(rows) > limit else None)


def _page(conditions: list[ColumnElement[bool]], limit: int | BindParameter[int]) -> Select[int, bytes]:
    return (
        select(audit_events.c.seq, audit_events.c.canonical)
        .where(*conditions)
        .order_by(audit_events.c.seq)
        .limit(limit)
    )


def _key(query: AuditQuery) -> tuple[Column[Any], str] | None:
    """The indexed key filtered on (patient, study or actor, in that order), if any."""
    c = audit_events.c
    for column, value in ((c.patient_id, query.patient), (c.study_uid, query.study), (c.principal_id, query.actor)):
        if value is not None:
            return column, value
    return None


def _holding(column: Column[Any], dialect: str) -> TextClause:
    """Which buckets in ``lo..hi`` hold ``column = :value``: one index probe per bucket,
    all inside the database (counted out by a recursive query on SQLite, by
    ``generate_series`` on PostgreSQL), in one statement."""
    bucket = f"({search_bucket(literal_column('seq'))})"  # written as the index writes it
    probe = f"EXISTS (SELECT 1 FROM audit_events WHERE {bucket} = b.x AND {column.name} = :value)"  # noqa: S608 - our own column
    if dialect == "sqlite":  # (a CAST here would cost the comparison its use of the index)
        numbers = "WITH RECURSIVE b(x) AS (SELECT :lo UNION ALL SELECT x + 1 FROM b WHERE x < :hi) SELECT x FROM b"
    else:
        numbers = "SELECT b.x FROM generate_series(CAST(:lo AS BIGINT), CAST(:hi AS BIGINT)) AS b(x)"
    return text(f"{numbers} WHERE {probe}")


def _bucket_by_bucket(
    conn: Connection, key: tuple[Column[Any], str], conditions: list[ColumnElement[bool]], after_seq: int | None,
    limit: int,
) -> list[Row[int, bytes]]:  # fmt: skip
    """Up to ``limit`` matching rows in ``seq`` order, read one search bucket at a time.

    While buckets answer, the next one is read at once; after an empty one (the key may be
    rare), one statement asks which of the next ``SKIP_BUCKETS`` hold the key at all, and
    only those are read.
    """
    last = conn.execute(select(func.max(audit_events.c.seq))).scalar()
    if last is None:
        return []
    column, value = key
    read = _page(
        [search_bucket(audit_events.c.seq) == bindparam("bucket"), *conditions], bindparam("room", type_=Integer)
    )
    holding = _holding(column, conn.dialect.name)
    end = last >> SEARCH_BUCKET_BITS
    cursor = 0 if after_seq is None else max(after_seq + 1, 0) >> SEARCH_BUCKET_BITS  # the first not yet planned
    known: deque[int] = deque()  # buckets known to hold the key, not read yet
    dense = True  # the last bucket read answered: read the next one without asking
    rows: list[Row[int, bytes]] = []
    while len(rows) < limit:
        if known:
            bucket = known.popleft()
        elif cursor > end:
            break
        elif dense:
            bucket, cursor = cursor, cursor + 1
        else:
            hi = min(cursor + SKIP_BUCKETS, end + 1) - 1
            known.extend(sorted(int(b) for (b,) in conn.execute(holding, {"lo": cursor, "hi": hi, "value": value})))
            cursor = hi + 1
            continue
        got = conn.execute(read, {"bucket": bucket, "room": limit - len(rows)}).all()
        rows += got
        dense = bool(got)
    return rows


def _event(seq: int, data: object) -> AuditEvent:
    try:
        return decode(bytes(data))  # type: ignore[call-overload]
    except (ValueError, TypeError) as exc:
        raise AuditIntegrityError(f"event {seq} is corrupt ({exc}): run 'pacsguard audit verify'") from exc


def _conditions(query: AuditQuery) -> list[ColumnElement[bool]]:
    c = audit_events.c
    conditions: list[ColumnElement[bool]] = []
    for column, value in [
        (c.principal_id, query.actor),
        (c.patient_id, query.patient),
        (c.study_uid, query.study),
        (c.ip, query.ip),
    ]:
        if value is not None:
            conditions.append(column == value)
    if query.types:
        conditions.append(c.type.in_(list(query.types)))
    if query.outcome is not None:
        conditions.append(c.outcome == Outcome(query.outcome).value)
    if query.since is not None:
        conditions.append(c.occurred_us >= to_us(utc(query.since)))
    if query.until is not None:
        conditions.append(c.occurred_us < to_us(utc(query.until)))
    if query.after_seq is not None:
        conditions.append(c.seq > query.after_seq)
    return conditions
