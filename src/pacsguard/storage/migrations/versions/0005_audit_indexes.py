"""Audit events: drop the IP and event-type search indexes (ingest cost, see bench/README.md).

Each secondary index costs every append a B-tree insert at a random position; the
benchmark measured the six of them at about three quarters of the insert time. The
questions an auditor asks first — who accessed this patient or study, what did this
principal do, what happened between two times — keep their indexes; an IP or an event
type is filtered within those, or by a scan in sequence order.

Revision ID: 0005_audit_indexes
Revises: 0002_audit
"""

from __future__ import annotations

from alembic import op

revision = "0005_audit_indexes"
down_revision = "0002_audit"
branch_labels = None
depends_on = None

_DROPPED = (("ip", "ip"), ("type", "type"))


def upgrade() -> None:
    """Drop ``ix_audit_events_ip_seq`` and ``ix_audit_events_type_seq``."""
    for name, _column in _DROPPED:
        op.drop_index(f"ix_audit_events_{name}_seq", table_name="audit_events")


def downgrade() -> None:
    """Recreate the two indexes."""
    for name, column in _DROPPED:
        op.create_index(f"ix_audit_events_{name}_seq", "audit_events", [column, "seq"])
