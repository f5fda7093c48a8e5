"""Reading stored events back in sequence order: for exports, the syslog forwarder, the
monitor's tail and the tests. Reading here is not "Audit Log Used" (that is ``search``,
the auditor-facing query); these are the system's own consumers.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime

from sqlalchemy import Engine, select

from pacsguard.audit.canonical import decode
from pacsguard.audit.store import to_us
from pacsguard.domain.events import AuditEvent
from pacsguard.errors import AuditIntegrityError
from pacsguard.storage.audit_tables import audit_events as te

__all__ = ["LogReader"]

PAGE = 1000


class LogReader:
    """Stored events by sequence number (``events_after``) or by time (``iter_events``)."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def events_after(self, after: int, limit: int = PAGE) -> Sequence[AuditEvent]:
        """Up to ``limit`` events with ``seq > after`` in order (``after=-1`` from the start).

        Raises ``AuditIntegrityError`` when a stored event does not decode.
        """
        query = select(te.c.seq, te.c.canonical).where(te.c.seq > after).order_by(te.c.seq).limit(limit)
        with self._engine.connect() as conn:
            return [_decode(seq, data) for seq, data in conn.execute(query)]

    def iter_events(self, since: datetime | None, until: datetime | None) -> Iterator[AuditEvent]:
        """Every event with ``since <= occurred_at < until`` in sequence order, page by page."""
        after = -1
        while True:
            query = select(te.c.seq, te.c.canonical).where(te.c.seq > after).order_by(te.c.seq).limit(PAGE)
            if since is not None:
                query = query.where(te.c.occurred_us >= to_us(since))
            if until is not None:
                query = query.where(te.c.occurred_us < to_us(until))
            with self._engine.connect() as conn:
                rows = list(conn.execute(query))
            yield from (_decode(seq, data) for seq, data in rows)
            if len(rows) < PAGE:
                return
            after = rows[-1][0]


def _decode(seq: int, data: bytes) -> AuditEvent:
    try:
        return decode(bytes(data))
    except ValueError as exc:
        raise AuditIntegrityError(f"event {seq} does not decode: run 'pacsguard audit verify'") from exc
