"""Tables of the audit log: events, Merkle tree nodes, signed tree heads.

All three are append-only: the code has no UPDATE or DELETE path, and on PostgreSQL a
trigger (migration ``0002_audit``) refuses both, and TRUNCATE. An event row keeps its
canonical bytes (what the leaf hash covers) plus copies of the fields search filters
on; ``audit verify`` checks that the copies agree with the canonical bytes.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Index, Integer, LargeBinary, SmallInteger, String, Table

from pacsguard.storage.base import metadata

__all__ = ["audit_events", "audit_heads", "audit_nodes"]

audit_events = Table(
    "audit_events",
    metadata,
    Column("seq", BigInteger, primary_key=True, autoincrement=False),
    Column("occurred_us", BigInteger, nullable=False),  # microseconds since 1970-01-01 UTC
    Column("type", String(64), nullable=False),
    Column("outcome", String(16), nullable=False),
    Column("principal_id", String(2048)),
    Column("ip", String(2048)),
    Column("patient_id", String(2048)),
    Column("study_uid", String(2048)),
    Column("leaf_hash", LargeBinary(32), nullable=False),
    Column("canonical", LargeBinary, nullable=False),
)
# Every search index ends in seq, so keyset pagination ("seq > after ORDER BY seq") is
# an index range scan: "who accessed this patient" reads only that patient's rows.
# Only the auditor's first questions are indexed (patient, study, principal, time): each
# index costs every append a random B-tree insert (migration 0005_audit_indexes dropped
# the IP and event-type ones); IP, type and outcome are filtered within these.
Index("ix_audit_events_patient_seq", audit_events.c.patient_id, audit_events.c.seq)
Index("ix_audit_events_principal_seq", audit_events.c.principal_id, audit_events.c.seq)
Index("ix_audit_events_study_seq", audit_events.c.study_uid, audit_events.c.seq)
Index("ix_audit_events_occurred", audit_events.c.occurred_us)

audit_nodes = Table(
    "audit_nodes",
    metadata,
    # The root of leaves [index·2^level, (index+1)·2^level), for level ≥ 1 (level 0 is
    # the events' leaf_hash).
    Column("level", SmallInteger, primary_key=True),
    Column("idx", BigInteger, primary_key=True),
    Column("hash", LargeBinary(32), nullable=False),
)

audit_heads = Table(
    "audit_heads",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("size", BigInteger, nullable=False),
    Column("root_hash", LargeBinary(32), nullable=False),
    Column("timestamp_us", BigInteger, nullable=False),
    Column("key_id", String(64), nullable=False),
    Column("signature", LargeBinary(64), nullable=False),
)
Index("ix_audit_heads_size", audit_heads.c.size)
