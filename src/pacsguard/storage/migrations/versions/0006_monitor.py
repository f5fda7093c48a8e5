"""Monitor cursor, alerts, incidents, blocked IPs and notification deliveries.

Revision ID: 0006_monitor
Revises: 0000_base
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006_monitor"
down_revision = "0000_base"
branch_labels = ("monitor",)
depends_on = None


def _ts() -> sa.DateTime:
    return sa.DateTime(timezone=True)


def upgrade() -> None:
    """Create the monitor tables."""
    op.create_table(
        "monitor_cursor",
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("last_seq", sa.BigInteger(), nullable=False),
        sa.Column("snapshot", sa.Text(), nullable=False),
        sa.Column("updated_at", _ts(), nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_monitor_cursor"),
    )
    op.create_table(
        "monitor_alerts",
        sa.Column("key", sa.String(1024), nullable=False),
        sa.Column("rule_id", sa.String(128), nullable=False),
        sa.Column("severity", sa.String(16), nullable=False),
        sa.Column("subject", sa.String(512), nullable=False),
        sa.Column("trigger_seq", sa.BigInteger(), nullable=False),
        sa.Column("first_event_at", _ts(), nullable=False),
        sa.Column("triggered_at", _ts(), nullable=False),
        sa.Column("stored_at", _ts(), nullable=False),
        sa.Column("time_to_alert_s", sa.Float(), nullable=False),
        sa.Column("live", sa.Boolean(), nullable=False),
        sa.Column("handled_at", _ts(), nullable=True),
        sa.Column("incident_id", sa.String(64), nullable=True),
        sa.Column("body", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("key", name="pk_monitor_alerts"),
    )
    op.create_table(
        "monitor_incidents",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("subject", sa.String(512), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("severity", sa.String(16), nullable=False),
        sa.Column("owner", sa.String(128), nullable=False),
        sa.Column("opened_at", _ts(), nullable=False),
        sa.Column("first_event_at", _ts(), nullable=False),
        sa.Column("first_alert_at", _ts(), nullable=False),
        sa.Column("acknowledged_at", _ts(), nullable=True),
        sa.Column("contained_at", _ts(), nullable=True),
        sa.Column("resolved_at", _ts(), nullable=True),
        sa.Column("evidence_from", sa.BigInteger(), nullable=False),
        sa.Column("evidence_to", sa.BigInteger(), nullable=False),
        sa.Column("checklist", sa.JSON(), nullable=False),
        sa.Column("scope", sa.JSON(), nullable=True),
        sa.Column("head", sa.JSON(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_monitor_incidents"),
    )
    op.create_table(
        "monitor_blocked_ips",
        sa.Column("ip", sa.String(64), nullable=False),
        sa.Column("until", _ts(), nullable=False),
        sa.Column("reason", sa.String(500), nullable=False),
        sa.Column("ordered_by", sa.String(256), nullable=False),
        sa.Column("created_at", _ts(), nullable=False),
        sa.PrimaryKeyConstraint("ip", name="pk_monitor_blocked_ips"),
    )
    op.create_table(
        "monitor_containments",
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("target", sa.String(256), nullable=False),
        sa.Column("ordered_by", sa.String(256), nullable=False),
        sa.Column("reason", sa.String(500), nullable=False),
        sa.Column("since", _ts(), nullable=False),
        sa.PrimaryKeyConstraint("action", "target", name="pk_monitor_containments"),
    )
    op.create_table(
        "monitor_deliveries",
        sa.Column("id", sa.Integer(), nullable=False, autoincrement=True),
        sa.Column("alert_key", sa.String(1024), nullable=False),
        sa.Column("channel", sa.String(32), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_at", _ts(), nullable=False),
        sa.Column("last_error", sa.String(1000), nullable=True),
        sa.Column("delivered_at", _ts(), nullable=True),
        sa.Column("created_at", _ts(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_monitor_deliveries"),
    )
    op.create_index("ix_monitor_alerts_subject", "monitor_alerts", ["subject"])
    op.create_index("ix_monitor_alerts_incident_id", "monitor_alerts", ["incident_id"])
    op.create_index("ix_monitor_incidents_subject_state", "monitor_incidents", ["subject", "state"])
    op.create_index("ix_monitor_deliveries_state_next_at", "monitor_deliveries", ["state", "next_at"])


def downgrade() -> None:
    """Drop the monitor tables."""
    op.drop_index("ix_monitor_alerts_subject", table_name="monitor_alerts")
    op.drop_index("ix_monitor_alerts_incident_id", table_name="monitor_alerts")
    op.drop_index("ix_monitor_incidents_subject_state", table_name="monitor_incidents")
    op.drop_index("ix_monitor_deliveries_state_next_at", table_name="monitor_deliveries")
    op.drop_table("monitor_deliveries")
    op.drop_table("monitor_containments")
    op.drop_table("monitor_blocked_ips")
    op.drop_table("monitor_incidents")
    op.drop_table("monitor_alerts")
    op.drop_table("monitor_cursor")
