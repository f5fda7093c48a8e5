"""Share links: one row per link and one per shared study.

Created by the migration ``0007_shares``. A link's token is never stored: only its
SHA-256 (``token_hash``). The passcode is an argon2id hash; the e-mailed one-time code
an HMAC under the link's own ``secret``, which also signs the recipient's cookies.
``contained_at`` marks links that containment (``expire_shares``) ended, so that its
undo brings back exactly those.
"""

from __future__ import annotations

from sqlalchemy import Column, DateTime, ForeignKey, Index, Integer, String, Table

from pacsguard.storage.base import metadata

__all__ = ["SHARE_TABLES", "share_studies", "shares"]

TS = DateTime(timezone=True)

shares = Table(
    "shares",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("creator", String(128), nullable=False),
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("secret", String(64), nullable=False),
    Column("created_at", TS, nullable=False),
    Column("expires_at", TS, nullable=False),
    Column("max_opens", Integer, nullable=False),
    Column("opens", Integer, nullable=False),
    Column("passcode_hash", String(256), nullable=True),
    Column("recipient", String(320), nullable=True),
    Column("code_hash", String(64), nullable=True),
    Column("code_expires_at", TS, nullable=True),
    Column("failed_attempts", Integer, nullable=False),
    Column("revoked_at", TS, nullable=True),
    Column("revoked_by", String(128), nullable=True),
    Column("revoked_reason", String(500), nullable=True),
    Column("contained_at", TS, nullable=True),
    Column("contained_by", String(256), nullable=True),
    Column("contained_reason", String(500), nullable=True),
    Column("expiry_noted_at", TS, nullable=True),
    Index("ix_shares_creator", "creator"),
)

share_studies = Table(
    "share_studies",
    metadata,
    Column("share_id", String(32), ForeignKey("shares.id", ondelete="CASCADE"), primary_key=True),
    Column("position", Integer, primary_key=True),
    Column("study_uid", String(64), nullable=False),
    Index("ix_share_studies_study_uid", "study_uid"),
)

SHARE_TABLES = (shares, share_studies)
