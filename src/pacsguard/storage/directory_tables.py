"""Tables of the directory: principals, role assignments, delegations, sessions, API tokens.

All times are stored as UTC (``DateTime(timezone=True)``; SQLite keeps them naive and the
directory reads them back as UTC). Secrets are never stored: sessions and API tokens keep
a SHA-256 hash, passwords an argon2id hash. The schema is created by the migration
``0001_directory``; a test checks that it matches these definitions on both backends.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
)

from pacsguard.storage.base import metadata

__all__ = [
    "DIRECTORY_TABLES",
    "api_tokens",
    "auth_sessions",
    "login_failures",
    "principals",
    "role_assignments",
    "role_delegations",
]

ID = 64
TS = DateTime(timezone=True)

principals = Table(
    "principals",
    metadata,
    Column("id", String(ID), primary_key=True),
    Column("kind", String(16), nullable=False),  # person | device | application
    Column("display_name", String(200), nullable=False),
    Column("zone", String(ID), nullable=False),
    Column("email", String(254), nullable=True),
    # Account state: active | locked | disabled; a lock may be temporary (locked_until).
    Column("state", String(16), nullable=False),
    Column("lock_reason", String(500), nullable=True),
    Column("locked_by", String(128), nullable=True),
    Column("locked_at", TS, nullable=True),
    Column("locked_until", TS, nullable=True),
    Column("lock_automatic", Boolean, nullable=False, default=False),
    # A device is a DICOM AE: AE title, host and the fingerprint of its certificate.
    Column("ae_title", String(16), nullable=True, unique=True),
    Column("host", String(255), nullable=True),
    Column("cert_fingerprint", String(64), nullable=True, unique=True),
    Column("cert_subject", String(500), nullable=True),
    Column("password_hash", String(255), nullable=True),
    Column("password_changed_at", TS, nullable=True),
    Column("totp_secret", String(64), nullable=True),
    Column("totp_last_step", BigInteger, nullable=True),
    Column("created_at", TS, nullable=False),
    Column("created_by", String(128), nullable=False),
    Column("updated_at", TS, nullable=False),
)

login_failures = Table(
    "login_failures",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("principal_id", String(ID), ForeignKey("principals.id", ondelete="CASCADE"), nullable=False),
    Column("at", TS, nullable=False),
    Column("reason", String(32), nullable=False),
    Index("ix_login_failures_principal_id_at", "principal_id", "at"),
)

role_assignments = Table(
    "role_assignments",
    metadata,
    Column("id", String(ID), primary_key=True),
    Column("principal_id", String(ID), ForeignKey("principals.id", ondelete="CASCADE"), nullable=False),
    Column("role_zone", String(ID), nullable=False),
    Column("role_name", String(ID), nullable=False),
    Column("not_before", TS, nullable=True),
    Column("not_after", TS, nullable=True),
    Column("assigned_by", String(128), nullable=False),
    Column("assigned_at", TS, nullable=False),
    Column("revoked_at", TS, nullable=True),
    Column("revoked_by", String(128), nullable=True),
    Index("ix_role_assignments_principal_id", "principal_id"),
)

role_delegations = Table(
    "role_delegations",
    metadata,
    Column("id", String(ID), primary_key=True),
    # The assignment at the root of the chain, and the delegation this one was made from.
    Column("assignment_id", String(ID), ForeignKey("role_assignments.id", ondelete="CASCADE"), nullable=False),
    Column("parent_id", String(ID), ForeignKey("role_delegations.id", ondelete="CASCADE"), nullable=True),
    Column("from_principal", String(ID), ForeignKey("principals.id", ondelete="CASCADE"), nullable=False),
    Column("to_principal", String(ID), ForeignKey("principals.id", ondelete="CASCADE"), nullable=False),
    Column("role_zone", String(ID), nullable=False),
    Column("role_name", String(ID), nullable=False),
    Column("actions", JSON, nullable=True),  # null: the whole role; else a list of actions
    Column("not_before", TS, nullable=True),
    Column("not_after", TS, nullable=True),
    Column("may_redelegate", Boolean, nullable=False, default=False),
    Column("created_at", TS, nullable=False),
    Column("revoked_at", TS, nullable=True),
    Column("revoked_by", String(128), nullable=True),
    Index("ix_role_delegations_to_principal", "to_principal"),
    Index("ix_role_delegations_assignment_id", "assignment_id"),
)

auth_sessions = Table(
    "auth_sessions",
    metadata,
    Column("id", String(ID), primary_key=True),  # public id, safe to log
    Column("token_hash", String(64), nullable=False, unique=True),  # SHA-256 of the secret
    Column("principal_id", String(ID), ForeignKey("principals.id", ondelete="CASCADE"), nullable=False),
    Column("auth_strength", Integer, nullable=False),
    Column("ip", String(64), nullable=True),
    Column("device_id", String(200), nullable=True),
    Column("user_agent", String(500), nullable=True),
    Column("created_at", TS, nullable=False),
    Column("last_seen_at", TS, nullable=False),
    Column("ended_at", TS, nullable=True),
    Column("end_reason", String(64), nullable=True),
    Index("ix_auth_sessions_principal_id", "principal_id"),
)

api_tokens = Table(
    "api_tokens",
    metadata,
    Column("id", String(ID), primary_key=True),  # public id, safe to log
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("principal_id", String(ID), ForeignKey("principals.id", ondelete="CASCADE"), nullable=False),
    Column("name", String(200), nullable=False),
    Column("scopes", JSON, nullable=False),
    Column("created_at", TS, nullable=False),
    Column("created_by", String(128), nullable=False),
    Column("expires_at", TS, nullable=False),
    Column("revoked_at", TS, nullable=True),
    Column("last_used_at", TS, nullable=True),
    Index("ix_api_tokens_principal_id", "principal_id"),
)

DIRECTORY_TABLES = (principals, login_failures, role_assignments, role_delegations, auth_sessions, api_tokens)
