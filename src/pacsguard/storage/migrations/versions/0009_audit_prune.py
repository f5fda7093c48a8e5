"""Audit retention: the ``audit_prunes`` table, and the guard trigger lets exactly pruned rows go.

On PostgreSQL the events table's trigger refused every UPDATE and DELETE. It now lets a
DELETE through only for an event below the end of a recorded prune (a row of
``audit_prunes``, itself append-only), so ``pacsguard audit prune`` can delete rows it
has first exported, verified and recorded, and nothing else can.

Revision ID: 0009_audit_prune
Revises: 0005_audit_indexes
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009_audit_prune"
down_revision = "0005_audit_indexes"
branch_labels = None
depends_on = None

_GUARD = """
CREATE OR REPLACE FUNCTION audit_events_guard() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'DELETE' AND OLD.seq < (SELECT coalesce(max("end"), 0) FROM audit_prunes) THEN
        RETURN OLD;
    END IF;
    RAISE EXCEPTION 'the audit log is append-only: % on % refused', TG_OP, TG_TABLE_NAME
        USING ERRCODE = 'insufficient_privilege';
END;
$$ LANGUAGE plpgsql
"""


def upgrade() -> None:
    """Create ``audit_prunes`` (append-only) and narrow the events guard to pruned rows."""
    op.create_table(
        "audit_prunes",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("first", sa.BigInteger, nullable=False),
        sa.Column("end", sa.BigInteger, nullable=False),
        sa.Column("file", sa.String(255), nullable=False),
        sa.Column("file_sha256", sa.String(64), nullable=False),
        sa.Column("pruned_us", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_audit_prunes"),
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute(_GUARD)
        op.execute("DROP TRIGGER audit_events_append_only ON audit_events")
        op.execute(
            "CREATE TRIGGER audit_events_append_only BEFORE UPDATE OR DELETE ON audit_events "
            "FOR EACH ROW EXECUTE FUNCTION audit_events_guard()"
        )
        op.execute(
            "CREATE TRIGGER audit_prunes_append_only BEFORE UPDATE OR DELETE ON audit_prunes "
            "FOR EACH ROW EXECUTE FUNCTION audit_refuse_change()"
        )
        op.execute(
            "CREATE TRIGGER audit_prunes_no_truncate BEFORE TRUNCATE ON audit_prunes "
            "FOR EACH STATEMENT EXECUTE FUNCTION audit_refuse_change()"
        )


def downgrade() -> None:
    """Back to refusing every DELETE; the prune records go (pruned rows stay gone)."""
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER audit_events_append_only ON audit_events")
        op.execute(
            "CREATE TRIGGER audit_events_append_only BEFORE UPDATE OR DELETE ON audit_events "
            "FOR EACH ROW EXECUTE FUNCTION audit_refuse_change()"
        )
        op.execute("DROP FUNCTION IF EXISTS audit_events_guard()")
    op.drop_table("audit_prunes")
