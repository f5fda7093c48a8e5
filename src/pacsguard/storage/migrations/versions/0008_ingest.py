"""External audit sources: quarantine of rejected messages, keys of imported events.

Revision ID: 0008_ingest
Revises: 0000_base
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008_ingest"
down_revision = "0000_base"
branch_labels = ("ingest",)
depends_on = None


def _ts() -> sa.DateTime:
    return sa.DateTime(timezone=True)


def upgrade() -> None:
    """Create the ingest tables."""
    op.create_table(
        "ingest_quarantine",
        sa.Column("id", sa.Integer(), nullable=False, autoincrement=True),
        sa.Column("received_at", _ts(), nullable=False),
        sa.Column("transport", sa.String(16), nullable=False),
        sa.Column("peer", sa.String(256), nullable=True),
        sa.Column("source", sa.String(512), nullable=True),
        sa.Column("reason", sa.String(64), nullable=False),
        sa.Column("message", sa.String(1000), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("raw", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_ingest_quarantine"),
    )
    op.create_index("ix_ingest_quarantine_received_at", "ingest_quarantine", ["received_at"])
    op.create_table(
        "ingest_imported",
        sa.Column("key", sa.String(64), nullable=False),
        sa.Column("source", sa.String(512), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("imported_at", _ts(), nullable=False),
        sa.PrimaryKeyConstraint("key", name="pk_ingest_imported"),
    )


def downgrade() -> None:
    """Drop the ingest tables."""
    op.drop_index("ix_ingest_quarantine_received_at", table_name="ingest_quarantine")
    op.drop_table("ingest_imported")
    op.drop_table("ingest_quarantine")
