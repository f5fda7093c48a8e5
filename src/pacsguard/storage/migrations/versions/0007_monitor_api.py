"""Monitor alerts for the HTTP API: a public id and who acknowledged the alert when.

The id is derived from the alert's key (``pacsguard.monitor.store.alert_id``), so the
rows stored before this migration get theirs here. An index on ``trigger_seq`` serves
the API's newest-first paging.

Revision ID: 0007_monitor_api
Revises: 0006_monitor
"""

from __future__ import annotations

import hashlib

import sqlalchemy as sa
from alembic import op

revision = "0007_monitor_api"
down_revision = "0006_monitor"
branch_labels = None
depends_on = None


def _alert_id(key: str) -> str:
    # the same derivation as pacsguard.monitor.store.alert_id (migrations never import app code)
    return "alr-" + hashlib.sha256(key.encode()).hexdigest()[:16]


def upgrade() -> None:
    """Add ``id``, ``acknowledged_at``, ``acknowledged_by``; fill ``id``; index it."""
    op.add_column("monitor_alerts", sa.Column("id", sa.String(32), nullable=True))
    op.add_column("monitor_alerts", sa.Column("acknowledged_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("monitor_alerts", sa.Column("acknowledged_by", sa.String(256), nullable=True))
    alerts = sa.table("monitor_alerts", sa.column("key", sa.String), sa.column("id", sa.String))
    conn = op.get_bind()
    for (key,) in list(conn.execute(sa.select(alerts.c.key))):
        conn.execute(sa.update(alerts).where(alerts.c.key == key).values(id=_alert_id(key)))
    op.create_index("ix_monitor_alerts_id", "monitor_alerts", ["id"], unique=True)
    op.create_index("ix_monitor_alerts_trigger_seq", "monitor_alerts", ["trigger_seq"])


def downgrade() -> None:
    """Drop the indexes and columns again."""
    op.drop_index("ix_monitor_alerts_trigger_seq", table_name="monitor_alerts")
    op.drop_index("ix_monitor_alerts_id", table_name="monitor_alerts")
    with op.batch_alter_table("monitor_alerts") as batch:  # SQLite rebuilds the table
        for column in ("acknowledged_by", "acknowledged_at", "id"):
            batch.drop_column(column)
