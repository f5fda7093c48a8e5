from __future__ import annotations

from sqlalchemy import Engine, text

from pacsguard.storage import is_sqlite


def test_migrations_reach_every_head(engine: Engine) -> None:
    with engine.connect() as conn:
        heads = {row[0] for row in conn.execute(text("SELECT version_num FROM alembic_version"))}
    assert heads
    assert "0000_base" not in heads or heads == {"0000_base"}


def test_sqlite_runs_in_wal_mode_with_full_sync(engine: Engine) -> None:
    if not is_sqlite(engine):
        assert engine.dialect.name == "postgresql"
        return
    with engine.connect() as conn:
        assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert conn.execute(text("PRAGMA synchronous")).scalar() == 2
        assert conn.execute(text("PRAGMA foreign_keys")).scalar() == 1
