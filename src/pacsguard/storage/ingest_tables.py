"""External audit sources: the quarantine of rejected messages and the keys of imported ones.

Created by the migration ``0008_ingest``.

- ``ingest_quarantine``: one row per rejected message (malformed, oversized, invalid
  UTF-8, a lying frame length, XML with a DTD): why, from where, when, its full size and
  its first bytes (truncated). The table is bounded in rows; the oldest are dropped.
- ``ingest_imported``: the content key (SHA-256 over the source and the canonical bytes
  of the original) of every imported event, unique, so importing a file twice adds
  nothing; with the ``seq`` the event got in the audit log.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, DateTime, Index, Integer, LargeBinary, String, Table

from pacsguard.storage.base import metadata

__all__ = ["INGEST_TABLES", "ingest_imported", "ingest_quarantine"]

TS = DateTime(timezone=True)

ingest_quarantine = Table(
    "ingest_quarantine",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("received_at", TS, nullable=False),
    Column("transport", String(16), nullable=False),
    Column("peer", String(256), nullable=True),
    Column("source", String(512), nullable=True),
    Column("reason", String(64), nullable=False),
    Column("message", String(1000), nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("raw", LargeBinary, nullable=False),
    Index("ix_ingest_quarantine_received_at", "received_at"),
)

ingest_imported = Table(
    "ingest_imported",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("source", String(512), nullable=False),
    Column("seq", BigInteger, nullable=False),
    Column("imported_at", TS, nullable=False),
)

INGEST_TABLES = (ingest_quarantine, ingest_imported)
