"""The monitor's state: its durable cursor and engine checkpoint, alerts, incidents,
blocked IP addresses and notification deliveries (the notification queue).

Created by the migration ``0006_monitor``; ``0007_monitor_api`` adds the alerts' public
id and acknowledgement. Alerts are keyed by ``Alert.key`` so storing
one twice is a no-op; the cursor row, the alerts and their deliveries are written in one
transaction, so a crash never loses or doubles an alert.
"""

from __future__ import annotations

from sqlalchemy import JSON, BigInteger, Boolean, Column, DateTime, Float, Index, Integer, String, Table, Text

from pacsguard.storage.base import metadata

__all__ = [
    "MONITOR_TABLES",
    "monitor_alerts",
    "monitor_blocked_ips",
    "monitor_containments",
    "monitor_cursor",
    "monitor_deliveries",
    "monitor_incidents",
]

TS = DateTime(timezone=True)

monitor_cursor = Table(
    "monitor_cursor",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("last_seq", BigInteger, nullable=False),
    Column("snapshot", Text, nullable=False),
    Column("updated_at", TS, nullable=False),
)

monitor_alerts = Table(
    "monitor_alerts",
    metadata,
    Column("key", String(1024), primary_key=True),
    Column("rule_id", String(128), nullable=False),
    Column("severity", String(16), nullable=False),
    Column("subject", String(512), nullable=False),
    Column("trigger_seq", BigInteger, nullable=False),
    Column("first_event_at", TS, nullable=False),
    Column("triggered_at", TS, nullable=False),
    Column("stored_at", TS, nullable=False),
    Column("time_to_alert_s", Float, nullable=False),
    Column("live", Boolean, nullable=False),
    Column("handled_at", TS, nullable=True),
    Column("incident_id", String(64), nullable=True),
    Column("body", JSON, nullable=False),
    Column("id", String(32), nullable=True),  # the public id (``alert_id(key)``), added by 0007
    Column("acknowledged_at", TS, nullable=True),
    Column("acknowledged_by", String(256), nullable=True),
    Index("ix_monitor_alerts_subject", "subject"),
    Index("ix_monitor_alerts_incident_id", "incident_id"),
    Index("ix_monitor_alerts_id", "id", unique=True),
    Index("ix_monitor_alerts_trigger_seq", "trigger_seq"),
)

monitor_incidents = Table(
    "monitor_incidents",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("subject", String(512), nullable=False),
    Column("state", String(16), nullable=False),
    Column("severity", String(16), nullable=False),
    Column("owner", String(128), nullable=False),
    Column("opened_at", TS, nullable=False),
    Column("first_event_at", TS, nullable=False),
    Column("first_alert_at", TS, nullable=False),
    Column("acknowledged_at", TS, nullable=True),
    Column("contained_at", TS, nullable=True),
    Column("resolved_at", TS, nullable=True),
    Column("evidence_from", BigInteger, nullable=False),
    Column("evidence_to", BigInteger, nullable=False),
    Column("checklist", JSON, nullable=False),
    Column("scope", JSON, nullable=True),
    Column("head", JSON, nullable=True),
    Index("ix_monitor_incidents_subject_state", "subject", "state"),
)

monitor_blocked_ips = Table(
    "monitor_blocked_ips",
    metadata,
    Column("ip", String(64), primary_key=True),
    Column("until", TS, nullable=False),
    Column("reason", String(500), nullable=False),
    Column("ordered_by", String(256), nullable=False),
    Column("created_at", TS, nullable=False),
)

monitor_containments = Table(
    "monitor_containments",
    metadata,
    Column("action", String(64), primary_key=True),
    Column("target", String(256), primary_key=True),
    Column("ordered_by", String(256), nullable=False),
    Column("reason", String(500), nullable=False),
    Column("since", TS, nullable=False),
)

monitor_deliveries = Table(
    "monitor_deliveries",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("alert_key", String(1024), nullable=False),
    Column("channel", String(32), nullable=False),
    Column("state", String(16), nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("next_at", TS, nullable=False),
    Column("last_error", String(1000), nullable=True),
    Column("delivered_at", TS, nullable=True),
    Column("created_at", TS, nullable=False),
    Index("ix_monitor_deliveries_state_next_at", "state", "next_at"),
)

MONITOR_TABLES = (
    monitor_cursor,
    monitor_alerts,
    monitor_incidents,
    monitor_blocked_ips,
    monitor_containments,
    monitor_deliveries,
)
