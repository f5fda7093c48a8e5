"""SQLAlchemy tables, Alembic migrations and repositories."""
