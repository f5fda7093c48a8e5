"""Patient consent directives (ISO/TS 22600 informed consent), one row per directive.

Rows are never deleted: revoking a directive records when and by whom, so the history of
what a patient allowed stays auditable. Created by the migration ``0004_consents``.
"""

from __future__ import annotations

from sqlalchemy import JSON, Boolean, Column, DateTime, Index, String, Table

from pacsguard.storage.base import metadata

__all__ = ["CONSENT_TABLES", "consent_directives"]

TS = DateTime(timezone=True)

consent_directives = Table(
    "consent_directives",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("patient_id", String(64), nullable=False),
    Column("kind", String(32), nullable=False),
    Column("zones", JSON, nullable=False),
    Column("purposes", JSON, nullable=False),
    Column("allow_emergency", Boolean, nullable=False),
    Column("description", String(500), nullable=False),
    Column("not_before", TS, nullable=True),
    Column("not_after", TS, nullable=True),
    Column("created_at", TS, nullable=False),
    Column("created_by", String(128), nullable=False),
    Column("revoked_at", TS, nullable=True),
    Column("revoked_by", String(128), nullable=True),
    Index("ix_consent_directives_patient_id", "patient_id"),
)

CONSENT_TABLES = (consent_directives,)
