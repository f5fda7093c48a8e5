"""SQLAlchemy tables, Alembic migrations and repositories."""

from pacsguard.storage.base import is_sqlite, make_engine, metadata, migrate

__all__ = ["is_sqlite", "make_engine", "metadata", "migrate"]
