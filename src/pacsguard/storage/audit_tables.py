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

from sqlalchemy import (
    BigInteger,
    Column,
    ColumnElement,
    Index,
    Integer,
    LargeBinary,
    SmallInteger,
    String,
    Table,
    literal_column,
)

from pacsguard.storage.base import metadata

__all__ = ["SEARCH_BUCKET_BITS", "audit_events", "audit_heads", "audit_nodes", "audit_prunes", "search_bucket"]

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
# The search indexes lead with the event's bucket, ``seq >> SEARCH_BUCKET_BITS``: the
# 2^14 = 16,384 consecutive events of one bucket have their own small part of each index,
# so an append only touches the pages of the newest bucket whatever the log's size (a
# plain (key, seq) index costs every append a random page of an index that grows with the
# log: at a million events, appends ran at a third of the fresh rate; see
# bench/audit/layouts.py and migration 0010_audit_search_buckets). Within a bucket the
# index is (key, seq), so search walks the buckets in order and reads only that key's
# rows, a page at a time. Only the auditor's first questions are indexed (patient, study,
# principal, time): IP, type and outcome are filtered within these (migration
# 0005_audit_indexes dropped their indexes).
SEARCH_BUCKET_BITS = 14


def search_bucket(seq: ColumnElement[int]) -> ColumnElement[int]:
    """The search bucket of ``seq``, written exactly as the indexes write it (a literal
    shift, not a bound parameter, or the databases would not match the index)."""
    return seq.op(">>", return_type=BigInteger)(literal_column(str(SEARCH_BUCKET_BITS)))


for _name, _key in [("patient", "patient_id"), ("principal", "principal_id"), ("study", "study_uid")]:
    Index(
        f"ix_audit_events_{_name}_bucket", search_bucket(audit_events.c.seq), audit_events.c[_key], audit_events.c.seq
    )
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
