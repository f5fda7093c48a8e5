"""Migration 0003_archives creates exactly the tables that archive_tables.py describes."""

from __future__ import annotations

from sqlalchemy import Engine, inspect

from pacsguard.storage import archive_tables


def test_migrated_schema_matches_the_table_definitions(engine: Engine) -> None:
    inspector = inspect(engine)
    for name in archive_tables.__all__:
        table = getattr(archive_tables, name)
        columns = {c["name"]: c for c in inspector.get_columns(table.name)}
        assert set(columns) == {c.name for c in table.columns}, table.name
        for column in table.columns:
            assert columns[column.name]["nullable"] == column.nullable, (table.name, column.name)
        assert set(inspector.get_pk_constraint(table.name)["constrained_columns"]) == {
            c.name for c in table.primary_key.columns
        }
        assert {i["name"] for i in inspector.get_indexes(table.name)} == {i.name for i in table.indexes}
