"""Share links and their studies.

Revision ID: 0007_shares
Revises: 0000_base
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007_shares"
down_revision = "0000_base"
branch_labels = ("shares",)
depends_on = None


def _ts() -> sa.DateTime:
    return sa.DateTime(timezone=True)


def upgrade() -> None:
    """Create the share-link tables."""
    op.create_table(
        "shares",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("creator", sa.String(128), nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("secret", sa.String(64), nullable=False),
        sa.Column("created_at", _ts(), nullable=False),
        sa.Column("expires_at", _ts(), nullable=False),
        sa.Column("max_opens", sa.Integer(), nullable=False),
        sa.Column("opens", sa.Integer(), nullable=False),
        sa.Column("passcode_hash", sa.String(256), nullable=True),
        sa.Column("recipient", sa.String(320), nullable=True),
        sa.Column("code_hash", sa.String(64), nullable=True),
        sa.Column("code_expires_at", _ts(), nullable=True),
        sa.Column("failed_attempts", sa.Integer(), nullable=False),
        sa.Column("revoked_at", _ts(), nullable=True),
        sa.Column("revoked_by", sa.String(128), nullable=True),
        sa.Column("revoked_reason", sa.String(500), nullable=True),
        sa.Column("contained_at", _ts(), nullable=True),
        sa.Column("contained_by", sa.String(256), nullable=True),
        sa.Column("contained_reason", sa.String(500), nullable=True),
        sa.Column("expiry_noted_at", _ts(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_shares"),
        sa.UniqueConstraint("token_hash", name="uq_shares_token_hash"),
    )
    op.create_index("ix_shares_creator", "shares", ["creator"])
    op.create_table(
        "share_studies",
        sa.Column("share_id", sa.String(32), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("study_uid", sa.String(64), nullable=False),
        sa.ForeignKeyConstraint(
            ["share_id"], ["shares.id"], name="fk_share_studies_share_id_shares", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("share_id", "position", name="pk_share_studies"),
    )
    op.create_index("ix_share_studies_study_uid", "share_studies", ["study_uid"])


def downgrade() -> None:
    """Drop the share-link tables."""
    op.drop_index("ix_share_studies_study_uid", table_name="share_studies")
    op.drop_table("share_studies")
    op.drop_index("ix_shares_creator", table_name="shares")
    op.drop_table("shares")
