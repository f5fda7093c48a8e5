"""The common root every component's migration branch starts from.

Revision ID: 0000_base
Revises:
"""

from __future__ import annotations

revision = "0000_base"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Nothing: each component adds its tables in a branch of its own from here."""


def downgrade() -> None:
    """Nothing to undo."""
