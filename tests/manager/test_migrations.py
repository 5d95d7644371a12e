"""The schema's migrations (issue 14): one Alembic history for SQLite and PostgreSQL, the
committed head schema is exactly what Alembic renders, a file from before migrations is
adopted with its data, a database newer than the code is refused, and several managers
starting together on one PostgreSQL database take turns."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from manager.db import SqliteDatabase
from manager.migrations import HEAD
from manager.schema import SchemaError, current_revision, head_sql_path, render_head_sql
from testkit.postgres import PostgresServer, postgres_server

DATA = Path(__file__).parent / "data"


@pytest.fixture(scope="module")
def pg() -> Iterator[PostgresServer]:
    with postgres_server() as server:
        yield server


@pytest.mark.parametrize("dialect", ["sqlite", "postgresql"])
def test_the_committed_head_schema_is_what_alembic_renders(dialect: str) -> None:
    assert head_sql_path(dialect).read_text() == render_head_sql(dialect), (
        "manager/migrations changed: regenerate the head schema with "
        "`python -c 'from manager.schema import write_head_sql; write_head_sql()'`")


def test_head_names_the_newest_migration() -> None:
    from alembic.script import ScriptDirectory

    from manager.schema import _alembic_config

    assert ScriptDirectory.from_config(_alembic_config()).get_current_head() == HEAD


def test_a_new_sqlite_file_starts_at_head(tmp_path: Path) -> None:
    db = SqliteDatabase(tmp_path / "m.db")
    assert current_revision(db) == HEAD
    assert db.has_table("seen_jwts") and db.has_table("files")


def test_a_file_from_before_migrations_is_adopted_with_its_data(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    con = sqlite3.connect(path)
    con.executescript((DATA / "schema-before-migrations.sql").read_text())
    con.execute("INSERT INTO tasks (task_id, type, selectors, params, context, timeout, "
                "status, created_at) VALUES ('task-old', 't', '[]', '{}', '{}', 60, "
                "'SUCCESS', 1.5)")
    con.commit()
    con.close()
    db = SqliteDatabase(path)
    assert current_revision(db) == HEAD
    row = db.one("SELECT task_id, late_result FROM tasks")
    assert (row["task_id"], row["late_result"]) == ("task-old", 0)
    db.run("INSERT INTO seen_jwts (jti, forget_after) VALUES ('j', 1.0)")
    db.close()
    again = SqliteDatabase(path)  # and it opens at head the next time
    assert current_revision(again) == HEAD


def test_a_sqlite_file_newer_than_the_code_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "m.db"
    SqliteDatabase(path).close()
    con = sqlite3.connect(path)
    con.execute("UPDATE alembic_version SET version_num = 'f00d'")
    con.commit()
    con.close()
    with pytest.raises(SchemaError, match="has schema revision f00d, which this manager "
                                          "does not know") as err:
        SqliteDatabase(path)
    assert "a newer manager migrated it" in str(err.value)


def test_postgresql_starts_at_head_and_refuses_a_newer_schema(pg: PostgresServer) -> None:
    from manager.db_postgres import PostgresDatabase

    url = pg.database("newer")
    db = PostgresDatabase(url)
    assert current_revision(db) == HEAD
    db.run("UPDATE alembic_version SET version_num = 'f00d'")
    db.close()
    with pytest.raises(SchemaError, match="f00d"):
        PostgresDatabase(url)


def test_replicas_starting_together_take_turns_with_the_schema(pg: PostgresServer) -> None:
    from manager.db_postgres import PostgresDatabase

    url = pg.database("together")
    opened: list[PostgresDatabase] = []
    errors: list[BaseException] = []

    def start() -> None:
        try:
            opened.append(PostgresDatabase(url))
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=start) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert errors == [] and len(opened) == 4
    assert all(current_revision(db) == HEAD for db in opened)
    for db in opened:
        db.close()
