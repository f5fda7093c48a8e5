"""Archives: the embedded store's index, the study catalogue, sync state.

Revision ID: 0003_archives
Revises: 0000_base
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003_archives"
down_revision = "0000_base"
branch_labels = ("archives",)
depends_on = None


def _uid(name: str, *, primary_key: bool = False, nullable: bool = False) -> sa.Column[str]:
    return sa.Column(name, sa.String(64), primary_key=primary_key, nullable=nullable)


def upgrade() -> None:
    """Create the index tables, the catalogue and the sync state."""
    op.create_table(
        "archive_studies",
        sa.Column("archive", sa.String(64), primary_key=True),
        _uid("study_uid", primary_key=True),
        sa.Column("patient_id", sa.String(64), nullable=False),
        sa.Column("patient_name", sa.String(324), nullable=False),
        sa.Column("patient_name_key", sa.String(324), nullable=False),
        sa.Column("study_date", sa.Date, nullable=True),
        sa.Column("study_time", sa.String(16), nullable=False),
        sa.Column("accession_number", sa.String(64), nullable=False),
        sa.Column("study_description", sa.String(64), nullable=False),
        sa.Column("modalities", sa.String(256), nullable=False),
        sa.Column("series_count", sa.Integer, nullable=False),
        sa.Column("instance_count", sa.Integer, nullable=False),
        sa.PrimaryKeyConstraint("archive", "study_uid", name="pk_archive_studies"),
    )
    op.create_index("ix_archive_studies_patient", "archive_studies", ["archive", "patient_id"])
    op.create_index("ix_archive_studies_date", "archive_studies", ["archive", "study_date"])
    op.create_table(
        "archive_series",
        sa.Column("archive", sa.String(64), primary_key=True),
        _uid("series_uid", primary_key=True),
        _uid("study_uid", nullable=False),
        sa.Column("modality", sa.String(16), nullable=False),
        sa.Column("series_number", sa.Integer, nullable=True),
        sa.Column("instance_count", sa.Integer, nullable=False),
        sa.PrimaryKeyConstraint("archive", "series_uid", name="pk_archive_series"),
        sa.ForeignKeyConstraint(
            ["archive", "study_uid"],
            ["archive_studies.archive", "archive_studies.study_uid"],
            name="fk_archive_series_archive_archive_studies",
        ),
    )
    op.create_index("ix_archive_series_study", "archive_series", ["archive", "study_uid"])
    op.create_table(
        "archive_instances",
        sa.Column("archive", sa.String(64), primary_key=True),
        _uid("sop_uid", primary_key=True),
        _uid("series_uid", nullable=False),
        _uid("study_uid", nullable=False),
        _uid("sop_class_uid", nullable=False),
        sa.Column("instance_number", sa.Integer, nullable=True),
        _uid("transfer_syntax", nullable=False),
        sa.Column("path", sa.Text, nullable=False),
        sa.Column("size", sa.Integer, nullable=False),
        sa.PrimaryKeyConstraint("archive", "sop_uid", name="pk_archive_instances"),
        sa.ForeignKeyConstraint(
            ["archive", "series_uid"],
            ["archive_series.archive", "archive_series.series_uid"],
            name="fk_archive_instances_archive_archive_series",
        ),
    )
    op.create_index("ix_archive_instances_series", "archive_instances", ["archive", "series_uid"])
    op.create_index("ix_archive_instances_study", "archive_instances", ["archive", "study_uid"])
    op.create_table(
        "study_catalogue",
        _uid("study_uid", primary_key=True),
        sa.Column("zone", sa.String(128), nullable=False),
        sa.Column("archive", sa.String(64), nullable=False),
        sa.Column("patient_id", sa.String(64), nullable=False),
        sa.Column("sensitivity", sa.Integer, nullable=False),
        sa.Column("modality", sa.String(256), nullable=False),
        sa.Column("study_date", sa.Date, nullable=True),
        sa.Column("description", sa.String(64), nullable=False),
        sa.Column("classified_by", sa.String(128), nullable=True),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("study_uid", name="pk_study_catalogue"),
    )
    op.create_index("ix_study_catalogue_zone", "study_catalogue", ["zone"])
    op.create_index("ix_study_catalogue_patient", "study_catalogue", ["patient_id"])
    op.create_table(
        "archive_sync_state",
        sa.Column("zone", sa.String(128), primary_key=True),
        sa.Column("archive", sa.String(64), primary_key=True),
        sa.Column("next_offset", sa.Integer, nullable=False),
        sa.Column("finished", sa.Integer, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("zone", "archive", name="pk_archive_sync_state"),
    )


def downgrade() -> None:
    """Drop them, dependants first."""
    for table in ("archive_sync_state", "study_catalogue", "archive_instances", "archive_series", "archive_studies"):
        op.drop_table(table)
