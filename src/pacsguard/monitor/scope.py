"""The scope of an incident, worked out from the audit log: what the subject touched.

Reads only the subject's own events through the audit log's ``(principal_id, seq)``
index, from a look-back time on, page by page; the system's own read, not an auditor's
search, so it records no ``audit.log.used``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, select

from pacsguard.audit.canonical import decode
from pacsguard.audit.store import to_us
from pacsguard.domain.events import AuditEvent
from pacsguard.errors import AuditIntegrityError
from pacsguard.storage.audit_tables import audit_events as te

__all__ = ["EXPORT_TYPES", "actor_events", "scope_of"]

EXPORT_TYPES = ("study.export", "study.download", "share.created", "export.created")
PAGE = 1000


def actor_events(db: Engine, principal_id: str, since: datetime) -> Iterator[AuditEvent]:
    """The events ``principal_id`` acted in, at or after ``since``, in seq order.

    Raises ``AuditIntegrityError`` when a stored event does not decode."""
    after = -1
    while True:
        query = (
            select(te.c.seq, te.c.canonical)
            .where(te.c.principal_id == principal_id, te.c.seq > after, te.c.occurred_us >= to_us(since))
            .order_by(te.c.seq)
            .limit(PAGE)
        )
        with db.connect() as conn:
            rows = list(conn.execute(query))
        for seq, data in rows:
            try:
                yield decode(bytes(data))
            except ValueError as exc:
                raise AuditIntegrityError(f"event {seq} does not decode: run 'pacsguard audit verify'") from exc
        if len(rows) < PAGE:
            return
        after = rows[-1][0]


def scope_of(events: Iterable[Any], principal_id: str) -> dict[str, Any]:
    """What ``principal_id`` touched in ``events``: studies, patients, exported or shared
    studies, share links, and the seq range read."""
    studies: set[str] = set()
    patients: set[str] = set()
    exported: set[str] = set()
    shares: set[str] = set()
    first = last = None
    for event in events:
        if event.actor.principal_id != principal_id:
            continue
        first = event.seq if first is None else first
        last = event.seq
        obj = event.objects
        if obj.study_uid:
            studies.add(obj.study_uid)
            if event.type in EXPORT_TYPES:
                exported.add(obj.study_uid)
        if obj.patient_id:
            patients.add(obj.patient_id)
        if obj.share_id:
            shares.add(obj.share_id)
    return {
        "principal": principal_id,
        "studies": sorted(studies),
        "patients": sorted(patients),
        "exported": sorted(exported),
        "shares": sorted(shares),
        "seq_range": [first, last],
    }
