"""Archives: the embedded store's index, the study catalogue, sync state.

Revision ID: 0003_archives
Revises: 0000_base
"""

from __future__ import annotations

from alembic import op

from pacsguard.storage.archive_tables import (
    archive_instances,
    archive_series,
    archive_studies,
    archive_sync_state,
    study_catalogue,
)

revision = "0003_archives"
down_revision = "0000_base"
branch_labels = ("archives",)
depends_on = None

_TABLES = [archive_studies, archive_series, archive_instances, study_catalogue, archive_sync_state]


def upgrade() -> None:
    """Create the archives tables (from their definitions, so they cannot drift)."""
    bind = op.get_bind()
    for table in _TABLES:
        table.create(bind)


def downgrade() -> None:
    """Drop them, dependants first."""
    bind = op.get_bind()
    for table in reversed(_TABLES):
        table.drop(bind)
