"""The migrated directory schema matches the table definitions, on both backends."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine, MetaData, inspect

from pacsguard.storage import metadata
from pacsguard.storage.directory_tables import DIRECTORY_TABLES

MINE = {t.name for t in DIRECTORY_TABLES}


def _only_directory_tables(name: str | None, type_: str, _parents: object) -> bool:
    """Other components' tables live in the same database; compare only ours."""
    return type_ != "table" or name in MINE


def test_migration_creates_every_directory_table(engine: Engine) -> None:
    assert set(inspect(engine).get_table_names()) >= MINE


def test_migrated_schema_matches_the_metadata(engine: Engine) -> None:
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True, "include_name": _only_directory_tables})
        diff = compare_metadata(context, _directory_metadata())
    assert diff == []


def _directory_metadata() -> MetaData:
    """Only this component's tables: other components' migrations are checked by theirs."""
    mine = MetaData(naming_convention=metadata.naming_convention)
    for table in DIRECTORY_TABLES:
        table.to_metadata(mine)
    return mine


def test_a_changed_definition_is_detected(engine: Engine) -> None:
    """The comparison can fail: a column missing from the database shows up."""
    from sqlalchemy import Column, String, Table

    other = MetaData()
    for table in DIRECTORY_TABLES:
        table.to_metadata(other)
    Table("principals", other, Column("nickname", String(20)), extend_existing=True)
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"include_name": _only_directory_tables})
        diff = compare_metadata(context, other)
    assert any(d[0] == "add_column" and d[2] == "principals" and d[3].name == "nickname" for d in diff)
