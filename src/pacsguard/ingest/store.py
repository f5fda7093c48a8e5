"""The ingest tables: the bounded quarantine and the keys of imported events.

Never called while the caller holds a write transaction for the audit log (SQLite has
one writer): the receiver writes a quarantine row, commits, and only then appends the
``external.rejected`` event; the importer records keys after the events are durable.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, delete, func, insert, select
from sqlalchemy.exc import SQLAlchemyError

from pacsguard.audit.store import Companion
from pacsguard.errors import IngestError
from pacsguard.storage.ingest_tables import ingest_imported as ti
from pacsguard.storage.ingest_tables import ingest_quarantine as tq

__all__ = ["DEFAULT_KEEP_BYTES", "DEFAULT_KEEP_ROWS", "IngestStore", "Quarantined"]

DEFAULT_KEEP_BYTES = 64 * 1024
DEFAULT_KEEP_ROWS = 10_000
_KEY_CHUNK = 500
_KEY_COLUMNS = ("key", "source", "imported_at")  # and seq, which the audit log adds


@dataclass(frozen=True, slots=True)
class Quarantined:
    """One rejected message: why (``reason``: a stable code, ``message``: for people),
    from where, when, its full size and its first bytes."""

    received_at: datetime
    transport: str
    reason: str
    message: str
    size: int
    raw: bytes
    peer: str | None = None
    source: str | None = None
    id: int | None = None


def _quarantined(r: Mapping[Any, Any]) -> Quarantined:
    return Quarantined(
        received_at=r["received_at"],
        transport=r["transport"],
        reason=r["reason"],
        message=r["message"],
        size=r["size"],
        raw=bytes(r["raw"]),
        peer=r["peer"],
        source=r["source"],
        id=r["id"],
    )


class IngestStore:
    """Quarantine rows (bounded: ``keep_rows`` rows, ``keep_bytes`` of each message) and
    imported keys, in the site's database."""

    def __init__(
        self, engine: Engine, *, keep_rows: int = DEFAULT_KEEP_ROWS, keep_bytes: int = DEFAULT_KEEP_BYTES
    ) -> None:
        self.engine = engine
        self.keep_rows = keep_rows
        self.keep_bytes = keep_bytes
        self._mark = "?" if engine.dialect.paramstyle == "qmark" else "%s"
        # imported_at as the dialect stores it (SQLite: text), converted once per batch
        self._imported_at: Callable[[datetime], Any] = ti.c.imported_at.type.bind_processor(engine.dialect) or (
            lambda at: at
        )

    def quarantine(self, item: Quarantined) -> int:
        """Store ``item`` (raw truncated to ``keep_bytes``), drop the oldest rows beyond
        ``keep_rows``; returns the row id. Raises ``IngestError`` if the database refuses."""
        values = {
            "received_at": item.received_at,
            "transport": item.transport[:16],
            "peer": item.peer[:256] if item.peer else None,
            "source": item.source[:512] if item.source else None,
            "reason": item.reason[:64],
            "message": item.message[:1000],
            "size": item.size,
            "raw": item.raw[: self.keep_bytes],
        }
        try:
            with self.engine.begin() as conn:
                row_id = int(conn.execute(insert(tq).values(values).returning(tq.c.id)).scalar_one())
                conn.execute(delete(tq).where(tq.c.id <= row_id - self.keep_rows))
        except SQLAlchemyError as exc:
            raise IngestError(f"the quarantine cannot be written: {type(exc).__name__}") from exc
        return row_id

    def quarantined(self, limit: int = 100) -> list[Quarantined]:
        """The newest quarantined messages first."""
        with self.engine.connect() as conn:
            rows = conn.execute(select(tq).order_by(tq.c.id.desc()).limit(limit)).mappings().all()
        return [_quarantined(r) for r in rows]

    def quarantine_count(self) -> int:
        with self.engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(tq)).scalar_one())

    def known(self, keys: Iterable[str]) -> set[str]:
        """Which of ``keys`` were imported already.

        Through the driver: SQLAlchemy's expanding ``IN`` left a
        dozen objects in reference cycles per query, which (with the import's sparse
        garbage collection) kept memory growing over a long import.
        """
        wanted = list(dict.fromkeys(keys))
        found: set[str] = set()
        with self.engine.connect() as conn:
            for i in range(0, len(wanted), _KEY_CHUNK):
                chunk = tuple(wanted[i : i + _KEY_CHUNK])
                marks = ", ".join([self._mark] * len(chunk))
                sql = f"SELECT key FROM ingest_imported WHERE key IN ({marks})"  # noqa: S608 - fixed names
                found.update(key for (key,) in conn.exec_driver_sql(sql, chunk))
        return found

    def key_rows(self, keys: Iterable[str], source: str, at: datetime) -> list[Companion]:
        """The ``ingest_imported`` rows recording that ``keys`` were imported from
        ``source`` at ``at``: each appended with its event (``AuditLog.append_prepared``),
        it is committed in the event's transaction and gets its seq, so an import cut
        short anywhere leaves no event without its key."""
        source, stamp = source[:512], self._imported_at(at)
        return [Companion("ingest_imported", _KEY_COLUMNS, (key, source, stamp)) for key in keys]
