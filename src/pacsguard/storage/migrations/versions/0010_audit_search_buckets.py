"""Audit events: the search indexes lead with the event's bucket, ``seq >> 14``.

A ``(key, seq)`` index takes every new event at a random place: once the index is larger
than the database's cache, each append dirties (and each commit writes) a page of each
search index. At a million events appends ran at a third of their rate on a fresh log,
and slower the larger the log grew. Led by ``seq >> 14``, the entries of the newest
16,384 events sit together, so appends touch a few hundred pages whatever the size;
search walks the buckets in order (``pacsguard.audit.search``). The figures are in
bench/README.md (``bench/audit/layouts.py``).

Building the new indexes reads the whole table once (a few seconds per million events).

Revision ID: 0010_audit_search_buckets
Revises: 0009_audit_prune
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010_audit_search_buckets"
down_revision = "0009_audit_prune"
branch_labels = None
depends_on = None

_KEYS = (("patient", "patient_id"), ("principal", "principal_id"), ("study", "study_uid"))


def upgrade() -> None:
    """Replace ``ix_audit_events_<key>_seq`` by ``ix_audit_events_<key>_bucket``."""
    for name, column in _KEYS:
        op.drop_index(f"ix_audit_events_{name}_seq", table_name="audit_events")
        op.create_index(f"ix_audit_events_{name}_bucket", "audit_events", [sa.text("(seq >> 14)"), column, "seq"])


def downgrade() -> None:
    """Back to ``(key, seq)``."""
    for name, column in _KEYS:
        op.drop_index(f"ix_audit_events_{name}_bucket", table_name="audit_events")
        op.create_index(f"ix_audit_events_{name}_seq", "audit_events", [column, "seq"])
