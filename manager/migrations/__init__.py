"""The manager's schema as Alembic migrations (``versions/``), for SQLite and PostgreSQL
alike. ``manager.schema`` applies them at start-up; see it for the fast paths."""

# The newest revision in versions/: a database at HEAD needs no Alembic at start-up.
# tests/manager/test_migrations.py checks this against the script directory.
HEAD = "0005"
