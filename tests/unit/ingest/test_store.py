"""The ingest tables: the migration matches them; the quarantine is bounded; keys are unique."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine, MetaData, inspect

from pacsguard.clock import FakeClock
from pacsguard.errors import IngestError
from pacsguard.ingest import IngestStore, Quarantined
from pacsguard.storage import metadata
from pacsguard.storage.ingest_tables import INGEST_TABLES

MINE = {t.name for t in INGEST_TABLES}


def _only_mine(name: str | None, type_: str, _parents: object) -> bool:
    return type_ != "table" or name in MINE


def test_migrated_schema_matches_the_metadata(engine: Engine) -> None:
    assert set(inspect(engine).get_table_names()) >= MINE
    mine = MetaData(naming_convention=metadata.naming_convention)
    for table in INGEST_TABLES:
        table.to_metadata(mine)
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True, "include_name": _only_mine})
        assert compare_metadata(context, mine) == []


def test_the_quarantine_keeps_the_newest_rows_and_bounded_bytes(engine: Engine, clock: FakeClock) -> None:
    store = IngestStore(engine, keep_rows=3, keep_bytes=10)
    for i in range(5):
        store.quarantine(Quarantined(clock.now(), "udp", "bad-xml", f"message {i}", 100, b"x" * 100, "1.2.3.4:5"))
    rows = store.quarantined()
    assert [r.message for r in rows] == ["message 4", "message 3", "message 2"]
    assert {len(r.raw) for r in rows} == {10}
    assert {r.size for r in rows} == {100}
    assert store.quarantine_count() == 3


def test_import_keys_are_unique(engine: Engine, clock: FakeClock) -> None:
    store = IngestStore(engine)
    store.remember([("k1", "src", 0), ("k2", "src", 1)], clock.now())
    assert store.known(["k1", "k3", "k2"]) == {"k1", "k2"}
    with pytest.raises(IngestError):
        store.remember([("k1", "src", 5)], clock.now())
