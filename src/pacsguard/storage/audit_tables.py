"""Tables of the audit log: events, Merkle tree nodes, signed tree heads.

They are append-only: the code has no UPDATE path, and on PostgreSQL a trigger
(migration ``0002_audit``) refuses UPDATE, DELETE and TRUNCATE. The one exception is
retention (``pacsguard audit prune``): event rows of a range recorded in ``audit_prunes``
(exported to a verified segment first) may be deleted; their leaf hashes stay in
``audit_nodes`` at level 0, so the tree, the proofs and the heads stay valid (migration
``0009_audit_prune`` narrows the trigger to exactly that). An event row keeps its
canonical bytes (what the leaf hash covers) plus copies of the fields search filters
on; ``audit verify`` checks that the copies agree with the canonical bytes.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Index, Integer, LargeBinary, SmallInteger, String, Table

from pacsguard.storage.base import metadata

__all__ = ["audit_events", "audit_heads", "audit_nodes", "audit_prunes"]

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
    # The root of leaves [index·2^level, (index+1)·2^level), for level ≥ 1. Level 0 is
    # the events' leaf_hash, stored here only for pruned events.
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

audit_prunes = Table(
    "audit_prunes",
    metadata,
    # One pruned segment: events [first, end) were deleted after their export file
    # (name and SHA-256) verified against the stored leaf hashes and a signed head.
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("first", BigInteger, nullable=False),
    Column("end", BigInteger, nullable=False),
    Column("file", String(255), nullable=False),
    Column("file_sha256", String(64), nullable=False),
    Column("pruned_us", BigInteger, nullable=False),
)
