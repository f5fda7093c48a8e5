"""The migrated audit schema (0002, 0005, 0009) matches the table definitions, on both backends."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine, MetaData

from pacsguard.storage import metadata
from pacsguard.storage.audit_tables import audit_events, audit_heads, audit_nodes, audit_prunes

TABLES = (audit_events, audit_heads, audit_nodes, audit_prunes)
MINE = {t.name for t in TABLES}


def _only_audit_tables(name: str | None, type_: str, _parents: object) -> bool:
    return type_ != "table" or name in MINE


def _diff(engine: Engine, tables: MetaData) -> list[object]:
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True, "include_name": _only_audit_tables})
        return list(compare_metadata(context, tables))


def _audit_metadata() -> MetaData:
    mine = MetaData(naming_convention=metadata.naming_convention)
    for table in TABLES:
        table.to_metadata(mine)
    return mine


def test_migrated_schema_matches_the_metadata(engine: Engine) -> None:
    assert _diff(engine, _audit_metadata()) == []


def test_a_changed_definition_is_detected(engine: Engine) -> None:
    tables = _audit_metadata()
    tables.remove(tables.tables["audit_prunes"])
    assert _diff(engine, tables) != []
