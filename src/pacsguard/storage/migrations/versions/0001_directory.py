"""Directory: principals, login failures, role assignments, delegations, sessions, API tokens.

Revision ID: 0001_directory
Revises: 0000_base
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001_directory"
down_revision = "0000_base"
branch_labels = None
depends_on = None

ID = 64


def _ts() -> sa.DateTime:
    return sa.DateTime(timezone=True)


def _fk(table: str, column: str, target: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint([column], [f"{target}.id"], name=f"fk_{table}_{column}_{target}", ondelete="CASCADE")


def upgrade() -> None:
    """Create the directory tables."""
    op.create_table(
        "principals",
        sa.Column("id", sa.String(ID), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("display_name", sa.String(200), nullable=False),
        sa.Column("zone", sa.String(ID), nullable=False),
        sa.Column("email", sa.String(254), nullable=True),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("lock_reason", sa.String(500), nullable=True),
        sa.Column("locked_by", sa.String(128), nullable=True),
        sa.Column("locked_at", _ts(), nullable=True),
        sa.Column("locked_until", _ts(), nullable=True),
        sa.Column("lock_automatic", sa.Boolean(), nullable=False),
        sa.Column("ae_title", sa.String(16), nullable=True),
        sa.Column("host", sa.String(255), nullable=True),
        sa.Column("cert_fingerprint", sa.String(64), nullable=True),
        sa.Column("cert_subject", sa.String(500), nullable=True),
        sa.Column("password_hash", sa.String(255), nullable=True),
        sa.Column("password_changed_at", _ts(), nullable=True),
        sa.Column("totp_secret", sa.String(64), nullable=True),
        sa.Column("totp_last_step", sa.BigInteger(), nullable=True),
        sa.Column("created_at", _ts(), nullable=False),
        sa.Column("created_by", sa.String(128), nullable=False),
        sa.Column("updated_at", _ts(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_principals"),
        sa.UniqueConstraint("ae_title", name="uq_principals_ae_title"),
        sa.UniqueConstraint("cert_fingerprint", name="uq_principals_cert_fingerprint"),
    )
    op.create_table(
        "login_failures",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("principal_id", sa.String(ID), nullable=False),
        sa.Column("at", _ts(), nullable=False),
        sa.Column("reason", sa.String(32), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_login_failures"),
        _fk("login_failures", "principal_id", "principals"),
    )
    op.create_index("ix_login_failures_principal_id_at", "login_failures", ["principal_id", "at"])
    op.create_table(
        "role_assignments",
        sa.Column("id", sa.String(ID), nullable=False),
        sa.Column("principal_id", sa.String(ID), nullable=False),
        sa.Column("role_zone", sa.String(ID), nullable=False),
        sa.Column("role_name", sa.String(ID), nullable=False),
        sa.Column("not_before", _ts(), nullable=True),
        sa.Column("not_after", _ts(), nullable=True),
        sa.Column("assigned_by", sa.String(128), nullable=False),
        sa.Column("assigned_at", _ts(), nullable=False),
        sa.Column("revoked_at", _ts(), nullable=True),
        sa.Column("revoked_by", sa.String(128), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_role_assignments"),
        _fk("role_assignments", "principal_id", "principals"),
    )
    op.create_index("ix_role_assignments_principal_id", "role_assignments", ["principal_id"])
    _create_delegations()
    _create_credentials()


def _create_delegations() -> None:
    op.create_table(
        "role_delegations",
        sa.Column("id", sa.String(ID), nullable=False),
        sa.Column("assignment_id", sa.String(ID), nullable=False),
        sa.Column("parent_id", sa.String(ID), nullable=True),
        sa.Column("from_principal", sa.String(ID), nullable=False),
        sa.Column("to_principal", sa.String(ID), nullable=False),
        sa.Column("role_zone", sa.String(ID), nullable=False),
        sa.Column("role_name", sa.String(ID), nullable=False),
        sa.Column("actions", sa.JSON(), nullable=True),
        sa.Column("not_before", _ts(), nullable=True),
        sa.Column("not_after", _ts(), nullable=True),
        sa.Column("may_redelegate", sa.Boolean(), nullable=False),
        sa.Column("created_at", _ts(), nullable=False),
        sa.Column("revoked_at", _ts(), nullable=True),
        sa.Column("revoked_by", sa.String(128), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_role_delegations"),
        _fk("role_delegations", "assignment_id", "role_assignments"),
        _fk("role_delegations", "parent_id", "role_delegations"),
        _fk("role_delegations", "from_principal", "principals"),
        _fk("role_delegations", "to_principal", "principals"),
    )
    op.create_index("ix_role_delegations_to_principal", "role_delegations", ["to_principal"])
    op.create_index("ix_role_delegations_assignment_id", "role_delegations", ["assignment_id"])


def _create_credentials() -> None:
    op.create_table(
        "auth_sessions",
        sa.Column("id", sa.String(ID), nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("principal_id", sa.String(ID), nullable=False),
        sa.Column("auth_strength", sa.Integer(), nullable=False),
        sa.Column("ip", sa.String(64), nullable=True),
        sa.Column("device_id", sa.String(200), nullable=True),
        sa.Column("user_agent", sa.String(500), nullable=True),
        sa.Column("created_at", _ts(), nullable=False),
        sa.Column("last_seen_at", _ts(), nullable=False),
        sa.Column("ended_at", _ts(), nullable=True),
        sa.Column("end_reason", sa.String(64), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_auth_sessions"),
        sa.UniqueConstraint("token_hash", name="uq_auth_sessions_token_hash"),
        _fk("auth_sessions", "principal_id", "principals"),
    )
    op.create_index("ix_auth_sessions_principal_id", "auth_sessions", ["principal_id"])
    op.create_table(
        "api_tokens",
        sa.Column("id", sa.String(ID), nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("principal_id", sa.String(ID), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("scopes", sa.JSON(), nullable=False),
        sa.Column("created_at", _ts(), nullable=False),
        sa.Column("created_by", sa.String(128), nullable=False),
        sa.Column("expires_at", _ts(), nullable=False),
        sa.Column("revoked_at", _ts(), nullable=True),
        sa.Column("last_used_at", _ts(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_api_tokens"),
        sa.UniqueConstraint("token_hash", name="uq_api_tokens_token_hash"),
        _fk("api_tokens", "principal_id", "principals"),
    )
    op.create_index("ix_api_tokens_principal_id", "api_tokens", ["principal_id"])


def downgrade() -> None:
    """Drop the directory tables."""
    for table in ("api_tokens", "auth_sessions", "role_delegations", "role_assignments", "login_failures"):
        op.drop_table(table)
    op.drop_table("principals")
