"""The migrated monitor schema matches the table definitions, on both backends."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine, MetaData, inspect

from pacsguard.storage import metadata
from pacsguard.storage.monitor_tables import MONITOR_TABLES

MINE = {t.name for t in MONITOR_TABLES}


def _only_monitor_tables(name: str | None, type_: str, _parents: object) -> bool:
    return type_ != "table" or name in MINE


def test_migration_creates_every_monitor_table(engine: Engine) -> None:
    assert set(inspect(engine).get_table_names()) >= MINE


def test_migrated_schema_matches_the_metadata(engine: Engine) -> None:
    mine = MetaData(naming_convention=metadata.naming_convention)
    for table in MONITOR_TABLES:
        table.to_metadata(mine)
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True, "include_name": _only_monitor_tables})
        diff = compare_metadata(context, mine)
    assert diff == []
