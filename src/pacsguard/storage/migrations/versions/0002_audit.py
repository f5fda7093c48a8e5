"""Audit log tables, append-only; on PostgreSQL a trigger refuses UPDATE, DELETE, TRUNCATE.

Revision ID: 0002_audit
Revises: 0000_base
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002_audit"
down_revision = "0000_base"
branch_labels = None
depends_on = None

_TABLES = ("audit_events", "audit_nodes", "audit_heads")

_REFUSE = """
CREATE OR REPLACE FUNCTION audit_refuse_change() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'the audit log is append-only: % on % refused', TG_OP, TG_TABLE_NAME
        USING ERRCODE = 'insufficient_privilege';
END;
$$ LANGUAGE plpgsql
"""


def upgrade() -> None:
    """Create the events, nodes and heads tables, their indexes and the guard triggers."""
    op.create_table(
        "audit_events",
        sa.Column("seq", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("occurred_us", sa.BigInteger, nullable=False),
        sa.Column("type", sa.String(64), nullable=False),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("principal_id", sa.String(2048)),
        sa.Column("ip", sa.String(2048)),
        sa.Column("patient_id", sa.String(2048)),
        sa.Column("study_uid", sa.String(2048)),
        sa.Column("leaf_hash", sa.LargeBinary(32), nullable=False),
        sa.Column("canonical", sa.LargeBinary, nullable=False),
        sa.PrimaryKeyConstraint("seq", name="pk_audit_events"),
    )
    for name, column in [
        ("patient", "patient_id"),
        ("principal", "principal_id"),
        ("study", "study_uid"),
        ("ip", "ip"),
        ("type", "type"),
    ]:
        op.create_index(f"ix_audit_events_{name}_seq", "audit_events", [column, "seq"])
    op.create_index("ix_audit_events_occurred", "audit_events", ["occurred_us"])
    op.create_table(
        "audit_nodes",
        sa.Column("level", sa.SmallInteger, nullable=False),
        sa.Column("idx", sa.BigInteger, nullable=False),
        sa.Column("hash", sa.LargeBinary(32), nullable=False),
        sa.PrimaryKeyConstraint("level", "idx", name="pk_audit_nodes"),
    )
    op.create_table(
        "audit_heads",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("root_hash", sa.LargeBinary(32), nullable=False),
        sa.Column("timestamp_us", sa.BigInteger, nullable=False),
        sa.Column("key_id", sa.String(64), nullable=False),
        sa.Column("signature", sa.LargeBinary(64), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_audit_heads"),
    )
    op.create_index("ix_audit_heads_size", "audit_heads", ["size"])
    if op.get_bind().dialect.name == "postgresql":
        op.execute(_REFUSE)
        for table in _TABLES:
            op.execute(
                f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
                "FOR EACH ROW EXECUTE FUNCTION audit_refuse_change()"
            )
            op.execute(
                f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
                "FOR EACH STATEMENT EXECUTE FUNCTION audit_refuse_change()"
            )


def downgrade() -> None:
    """Drop the audit tables (an operator's decision: the log is gone afterwards)."""
    for table in reversed(_TABLES):
        op.drop_table(table)
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION IF EXISTS audit_refuse_change()")
