"""The schema at start-up: migrations (``manager/migrations``, Alembic) applied to either
backend, and a database newer than this code refused.

Alembic is the one source of truth, but importing it (with SQLAlchemy) costs half a
second, and a manager starts often (every test starts one). So two paths skip it: a
database already at ``HEAD`` (one query), and a new empty one, which gets the head schema
as Alembic itself renders it offline — committed as ``migrations/head-<dialect>.sql``,
and checked against Alembic's own rendering by tests/manager/test_migrations.py. Only a
database behind ``HEAD`` imports Alembic to upgrade."""

from __future__ import annotations

import io
from pathlib import Path
from typing import TYPE_CHECKING, Any

from manager.errors import ManagerError
from manager.migrations import HEAD

if TYPE_CHECKING:
    from manager.db import Database

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


class SchemaError(ManagerError):
    """The database's schema cannot be used by this manager (said why, and what to do)."""


def head_sql_path(dialect: str) -> Path:
    return MIGRATIONS / f"head-{dialect}.sql"


def _alembic_config(**attributes: Any) -> Any:
    from alembic.config import Config

    cfg = Config(output_buffer=attributes.pop("output_buffer", None))
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes.update(attributes)
    return cfg


def render_head_sql(dialect: str) -> str:
    """The whole schema, from nothing to HEAD, as Alembic renders it for ``dialect``."""
    from alembic import command

    buf = io.StringIO()
    command.upgrade(_alembic_config(dialect=dialect, output_buffer=buf), "head", sql=True)
    return buf.getvalue()


def known_revisions() -> set[str]:
    from alembic.script import ScriptDirectory

    return {s.revision for s in ScriptDirectory.from_config(_alembic_config()).walk_revisions()}


def current_revision(db: Database) -> str | None:
    if not db.has_table("alembic_version"):
        return None
    row = db.one("SELECT version_num FROM alembic_version")
    return None if row is None else str(row[0])


def _adopt_unversioned(db: Database) -> None:
    """A SQLite file made before migrations: bring it to the baseline (the one column
    added since), then mark it so."""
    have = {row[1] for row in db.all("PRAGMA table_info(tasks)")}
    if "late_result" not in have:
        db.run("ALTER TABLE tasks ADD COLUMN late_result INTEGER NOT NULL DEFAULT 0")
    db.run("CREATE TABLE IF NOT EXISTS seen_jwts (jti TEXT PRIMARY KEY, "
           "forget_after REAL NOT NULL)")
    db.run("CREATE INDEX IF NOT EXISTS seen_jwts_forget ON seen_jwts(forget_after)")
    db.run("CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL PRIMARY KEY)")
    db.run("INSERT INTO alembic_version (version_num) VALUES ('0001')")


def _upgrade(db: Database, current: str) -> None:
    if current not in known_revisions():
        raise SchemaError(
            f"the database at {db.display_url} has schema revision {current}, which this "
            f"manager does not know (its newest is {HEAD}): a newer manager migrated it. "
            "Run that version, or restore the backup taken before the upgrade.")
    from alembic import command
    from sqlalchemy import create_engine

    engine = create_engine(db.sqlalchemy_url)
    try:
        with engine.begin() as connection:
            command.upgrade(_alembic_config(connection=connection), "head")
    finally:
        engine.dispose()


def ensure_schema(db: Database) -> None:
    """Bring ``db`` to HEAD (see the module docstring); several managers starting at once
    on one PostgreSQL database take turns (``db.schema_lock``)."""
    with db.schema_lock():
        current = current_revision(db)
        if current == HEAD:
            return
        if current is None and not db.has_table("tasks"):
            db.script(head_sql_path(db.dialect).read_text())
            return
        if current is None:
            _adopt_unversioned(db)
            current = "0001"
        if current != HEAD:
            _upgrade(db, current)


def write_head_sql() -> None:
    """Regenerate ``migrations/head-*.sql`` after adding a migration."""
    for dialect in ("sqlite", "postgresql"):
        head_sql_path(dialect).write_text(render_head_sql(dialect))
