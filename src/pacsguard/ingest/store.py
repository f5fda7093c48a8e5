"""The ingest tables: the bounded quarantine and the keys of imported events.

Never called while the caller holds a write transaction for the audit log (SQLite has
one writer): the receiver writes a quarantine row, commits, and only then appends the
``external.rejected`` event; the importer records keys after the events are durable.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from itertools import chain
from typing import Any

from sqlalchemy import Engine, delete, func, insert, select
from sqlalchemy.exc import SQLAlchemyError

from pacsguard.errors import IngestError
from pacsguard.storage.ingest_tables import ingest_imported as ti
from pacsguard.storage.ingest_tables import ingest_quarantine as tq

__all__ = ["DEFAULT_KEEP_BYTES", "DEFAULT_KEEP_ROWS", "IngestStore", "Quarantined"]

DEFAULT_KEEP_BYTES = 64 * 1024
DEFAULT_KEEP_ROWS = 10_000
_KEY_CHUNK = 500
_ROWS_PER_INSERT = 500  # 4 parameters a row: far below SQLite's and PostgreSQL's limits


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
        self._mark = mark = "?" if engine.dialect.paramstyle == "qmark" else "%s"
        self._row_marks = f"({mark}, {mark}, {mark}, {mark})"
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

        Through the driver, like ``remember``: SQLAlchemy's expanding ``IN`` left a
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

    def remember(self, rows: Sequence[tuple[str, str, int]], at: datetime) -> None:
        """Record imported ``(key, source, seq)``; raises ``IngestError`` if refused.

        Multi-row INSERTs straight through the driver, ``_ROWS_PER_INSERT`` rows each: an
        import records a key per event, and SQLAlchemy's per-row parameter handling cost
        more than the insert itself (and an ``executemany`` would let the audit writer
        thread take the GIL between every two rows).
        """
        if not rows:
            return
        stamp = self._imported_at(at)
        values = [(key, source[:512], seq, stamp) for key, source, seq in rows]
        try:
            with self.engine.begin() as conn:
                for start in range(0, len(values), _ROWS_PER_INSERT):
                    chunk = values[start : start + _ROWS_PER_INSERT]
                    marks = ", ".join([self._row_marks] * len(chunk))
                    sql = f"INSERT INTO ingest_imported (key, source, seq, imported_at) VALUES {marks}"  # noqa: S608
                    conn.exec_driver_sql(sql, tuple(chain.from_iterable(chunk)))
        except SQLAlchemyError as exc:
            raise IngestError(f"the import keys cannot be written: {type(exc).__name__}") from exc
