"""Engines, the shared ``MetaData`` and schema migrations.

SQLite (WAL, ``synchronous=FULL``, foreign keys on) is the default; PostgreSQL works
through psycopg 3 when the URL says ``postgresql+psycopg://``. The schema is owned by
Alembic: ``migrate(engine)`` brings any database to the newest revision of every branch.
"""

from __future__ import annotations

from importlib import resources
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, MetaData, create_engine, event
from sqlalchemy.engine import make_url

__all__ = ["is_sqlite", "make_engine", "metadata", "migrate"]

# Stable constraint names, so migrations can refer to them on every backend.
metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)


def is_sqlite(engine: Engine) -> bool:
    return engine.dialect.name == "sqlite"


def make_engine(url: str, *, echo: bool = False) -> Engine:
    """An engine for ``url``; an SQLite file is opened in WAL mode with full fsync."""
    parsed = make_url(url)
    kwargs: dict[str, Any] = {"echo": echo, "future": True}
    if parsed.get_backend_name() == "sqlite":
        if parsed.database in (None, "", ":memory:"):
            raise ValueError("use a file for SQLite: an in-memory database is not shared between connections")
        kwargs["connect_args"] = {"check_same_thread": False, "timeout": 30}
    else:
        kwargs["pool_pre_ping"] = True
    engine = create_engine(parsed, **kwargs)
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    return engine


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def migrate(engine: Engine, revision: str = "heads") -> None:
    """Upgrade the database to the newest revision of every migration branch (or only as
    far as ``revision``: the tests of an upgrade start from an older schema)."""
    config = Config()
    with resources.as_file(resources.files("pacsguard.storage") / "migrations") as location:
        config.set_main_option("script_location", str(location))
        with engine.begin() as connection:
            config.attributes["connection"] = connection
            command.upgrade(config, revision)
