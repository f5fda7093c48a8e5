"""The migrated audit schema (0002, 0005, 0009, 0010) matches the table definitions, on both backends.

SQLite's reflection cannot read expression indexes (the search indexes lead with
``seq >> 14``), so those are compared as DDL text, on both backends.
"""

from __future__ import annotations

import re
import warnings

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine, MetaData, text
from sqlalchemy.schema import CreateIndex

from pacsguard.storage import metadata
from pacsguard.storage.audit_tables import SEARCH_BUCKET_BITS, audit_events, audit_heads, audit_nodes, audit_prunes

TABLES = (audit_events, audit_heads, audit_nodes, audit_prunes)
MINE = {t.name for t in TABLES}


def _only_audit_tables(name: str | None, type_: str, _parents: object) -> bool:
    return type_ != "table" or name in MINE


def _diff(engine: Engine, tables: MetaData) -> list[object]:
    with engine.connect() as conn, warnings.catch_warnings():
        warnings.filterwarnings("ignore", "Skipped unsupported reflection of expression-based index")
        warnings.filterwarnings("ignore", "autogenerate skipping metadata-specified expression-based index")
        context = MigrationContext.configure(conn, opts={"compare_type": True, "include_name": _only_audit_tables})
        return list(compare_metadata(context, tables))


def _index_definitions(engine: Engine) -> dict[str, str]:
    """The audit events' search indexes as the database holds them, without spaces or parentheses."""
    if engine.dialect.name == "sqlite":
        sql = "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND name LIKE 'ix_audit_events_%_bucket'"
    else:
        sql = "SELECT indexname, indexdef FROM pg_indexes WHERE indexname LIKE 'ix_audit_events_%_bucket'"
    with engine.connect() as conn:
        return {name: _bare(definition) for name, definition in conn.execute(text(sql))}


def _bare(ddl: str) -> str:
    ddl = re.sub(r"\bpublic\.|USING btree |::bigint", "", ddl)
    return re.sub(r"[\s()]", "", ddl).lower()


def _audit_metadata() -> MetaData:
    mine = MetaData(naming_convention=metadata.naming_convention)
    for table in TABLES:
        table.to_metadata(mine)
    return mine


def test_migrated_schema_matches_the_metadata(engine: Engine) -> None:
    assert _diff(engine, _audit_metadata()) == []


def test_the_search_indexes_are_the_bucketed_ones(engine: Engine) -> None:
    expected = {
        index.name: _bare(str(CreateIndex(index).compile(dialect=engine.dialect)))
        for index in audit_events.indexes
        if index.name and index.name.endswith("_bucket")
    }
    assert sorted(expected) == [f"ix_audit_events_{k}_bucket" for k in ("patient", "principal", "study")]
    assert all(f"seq>>{SEARCH_BUCKET_BITS}," in ddl for ddl in expected.values()), expected
    assert _index_definitions(engine) == expected


def test_a_changed_definition_is_detected(engine: Engine) -> None:
    tables = _audit_metadata()
    tables.remove(tables.tables["audit_prunes"])
    assert _diff(engine, tables) != []
