"""Tables of the archives package: the embedded store's index, the study catalogue and
the resumable state of ``archive sync``. Created by migration ``0003_archives``."""

from __future__ import annotations

from sqlalchemy import Column, Date, DateTime, ForeignKeyConstraint, Index, Integer, String, Table, Text

from pacsguard.storage.base import metadata

__all__ = ["archive_instances", "archive_series", "archive_studies", "archive_sync_state", "study_catalogue"]

UID = 64

# --- embedded store index: one row per study, series and instance of each embedded archive
archive_studies = Table(
    "archive_studies",
    metadata,
    Column("archive", String(64), primary_key=True),
    Column("study_uid", String(UID), primary_key=True),
    Column("patient_id", String(64), nullable=False, default=""),
    Column("patient_name", String(324), nullable=False, default=""),
    Column("patient_name_key", String(324), nullable=False, default=""),  # upper case, for matching
    Column("study_date", Date, nullable=True),
    Column("study_time", String(16), nullable=False, default=""),
    Column("accession_number", String(64), nullable=False, default=""),
    Column("study_description", String(64), nullable=False, default=""),
    Column("modalities", String(256), nullable=False, default=""),  # ",CT,MR,"
    Column("series_count", Integer, nullable=False, default=0),
    Column("instance_count", Integer, nullable=False, default=0),
    Index("ix_archive_studies_patient", "archive", "patient_id"),
    Index("ix_archive_studies_date", "archive", "study_date"),
)

archive_series = Table(
    "archive_series",
    metadata,
    Column("archive", String(64), primary_key=True),
    Column("series_uid", String(UID), primary_key=True),
    Column("study_uid", String(UID), nullable=False),
    Column("modality", String(16), nullable=False, default=""),
    Column("series_number", Integer, nullable=True),
    Column("instance_count", Integer, nullable=False, default=0),
    ForeignKeyConstraint(["archive", "study_uid"], ["archive_studies.archive", "archive_studies.study_uid"]),
    Index("ix_archive_series_study", "archive", "study_uid"),
)

archive_instances = Table(
    "archive_instances",
    metadata,
    Column("archive", String(64), primary_key=True),
    Column("sop_uid", String(UID), primary_key=True),
    Column("series_uid", String(UID), nullable=False),
    Column("study_uid", String(UID), nullable=False),
    Column("sop_class_uid", String(UID), nullable=False),
    Column("instance_number", Integer, nullable=True),
    Column("transfer_syntax", String(UID), nullable=False),
    Column("path", Text, nullable=False),
    Column("size", Integer, nullable=False),
    ForeignKeyConstraint(["archive", "series_uid"], ["archive_series.archive", "archive_series.series_uid"]),
    Index("ix_archive_instances_series", "archive", "series_uid"),
    Index("ix_archive_instances_study", "archive", "study_uid"),
)

# --- the study catalogue: study -> owning zone, archive, patient, sensitivity
study_catalogue = Table(
    "study_catalogue",
    metadata,
    Column("study_uid", String(UID), primary_key=True),
    Column("zone", String(128), nullable=False),
    Column("archive", String(64), nullable=False),
    Column("patient_id", String(64), nullable=False, default=""),
    Column("sensitivity", Integer, nullable=False),
    Column("modality", String(256), nullable=False, default=""),
    Column("study_date", Date, nullable=True),
    Column("description", String(64), nullable=False, default=""),
    Column("classified_by", String(128), nullable=True),
    Column("recorded_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Index("ix_study_catalogue_zone", "zone"),
    Index("ix_study_catalogue_patient", "patient_id"),
)

# --- where an interrupted ``archive sync`` resumes
archive_sync_state = Table(
    "archive_sync_state",
    metadata,
    Column("zone", String(128), primary_key=True),
    Column("archive", String(64), primary_key=True),
    Column("next_offset", Integer, nullable=False, default=0),
    Column("finished", Integer, nullable=False, default=0),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)
