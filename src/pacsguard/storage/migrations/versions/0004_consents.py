"""Patient consent directives.

Revision ID: 0004_consents
Revises: 0000_base
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004_consents"
down_revision = "0000_base"
branch_labels = ("consents",)
depends_on = None


def _ts() -> sa.DateTime:
    return sa.DateTime(timezone=True)


def upgrade() -> None:
    """Create the consent directive table."""
    op.create_table(
        "consent_directives",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("patient_id", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("zones", sa.JSON(), nullable=False),
        sa.Column("purposes", sa.JSON(), nullable=False),
        sa.Column("allow_emergency", sa.Boolean(), nullable=False),
        sa.Column("description", sa.String(500), nullable=False),
        sa.Column("not_before", _ts(), nullable=True),
        sa.Column("not_after", _ts(), nullable=True),
        sa.Column("created_at", _ts(), nullable=False),
        sa.Column("created_by", sa.String(128), nullable=False),
        sa.Column("revoked_at", _ts(), nullable=True),
        sa.Column("revoked_by", sa.String(128), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_consent_directives"),
    )
    op.create_index("ix_consent_directives_patient_id", "consent_directives", ["patient_id"])


def downgrade() -> None:
    """Drop the consent directive table."""
    op.drop_index("ix_consent_directives_patient_id", table_name="consent_directives")
    op.drop_table("consent_directives")
