"""The migrated monitor schema matches the table definitions, on both backends."""

from __future__ import annotations

from datetime import UTC, datetime
from importlib import resources

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from sqlalchemy import JSON, Engine, MetaData, column, insert, inspect, select, table

from pacsguard.monitor.store import alert_id
from pacsguard.storage import metadata
from pacsguard.storage.monitor_tables import MONITOR_TABLES, monitor_alerts

MINE = {t.name for t in MONITOR_TABLES}


def _only_monitor_tables(name: str | None, type_: str, _parents: object) -> bool:
    return type_ != "table" or name in MINE


def test_migration_creates_every_monitor_table(engine: Engine) -> None:
    assert set(inspect(engine).get_table_names()) >= MINE


def test_migrated_schema_matches_the_metadata(engine: Engine) -> None:
    mine = MetaData(naming_convention=metadata.naming_convention)
    for each in MONITOR_TABLES:
        each.to_metadata(mine)
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True, "include_name": _only_monitor_tables})
        diff = compare_metadata(context, mine)
    assert diff == []


def _alembic(engine: Engine, action: str, target: str) -> None:
    config = Config()
    with resources.as_file(resources.files("pacsguard.storage") / "migrations") as location:
        config.set_main_option("script_location", str(location))
        with engine.begin() as connection:
            config.attributes["connection"] = connection
            getattr(command, action)(config, target)


def test_0007_gives_alerts_stored_before_it_their_public_id(engine: Engine) -> None:
    _alembic(engine, "downgrade", "0006_monitor")
    assert "id" not in {c["name"] for c in inspect(engine).get_columns("monitor_alerts")}
    old = table("monitor_alerts", *(column(n) for n in ("key", "rule_id", "severity", "subject", "trigger_seq")),
                *(column(n) for n in ("first_event_at", "triggered_at", "stored_at", "time_to_alert_s", "live")),
                column("body", JSON))  # fmt: skip
    at = datetime(2026, 1, 5, tzinfo=UTC)
    key = "auth.failed-logins-account/actor.principal_id=alice/9"
    with engine.begin() as conn:
        conn.execute(insert(old).values(key=key, rule_id="r", severity="high", subject="s", trigger_seq=9,
                                        first_event_at=at, triggered_at=at, stored_at=at, time_to_alert_s=0.0,
                                        live=True, body={}))  # fmt: skip
    _alembic(engine, "upgrade", "heads")
    with engine.connect() as conn:
        assert conn.execute(select(monitor_alerts.c.id)).scalar_one() == alert_id(key)
