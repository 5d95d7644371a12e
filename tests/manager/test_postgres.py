"""The manager on PostgreSQL when the server goes away and comes back (issue 14): the
connection is re-made, a request during the outage is answered 503 with Retry-After
(not a traceback), and nothing committed before is lost."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from manager.app import ManagerServer
from manager.db import DatabaseUnavailable
from manager.settings import Settings
from testkit.postgres import PostgresServer, postgres_server
from tests.manager.conftest import ADMIN, SECRET_KEY


@pytest.fixture
def pg() -> Iterator[PostgresServer]:
    with postgres_server() as server:
        yield server


def test_the_connection_is_remade_after_the_server_restarts(pg: PostgresServer) -> None:
    from manager.db_postgres import PostgresDatabase

    db = PostgresDatabase(pg.database("restart"))
    with db.tx():
        db.run("INSERT INTO meta (name, value) VALUES ('kept', ?)", b"1")
    pg.stop("fast")
    with pytest.raises(DatabaseUnavailable, match="failed"):
        db.run("UPDATE meta SET value = ? WHERE name = 'kept'", b"2")
    pg.start()
    assert db.one("SELECT value FROM meta WHERE name = 'kept'")[0] == b"1"
    with db.tx():  # a transaction begins on a fresh connection too
        db.run("UPDATE meta SET value = ? WHERE name = 'kept'", b"3")
    assert db.one("SELECT value FROM meta WHERE name = 'kept'")[0] == b"3"
    db.close()


def test_an_unreachable_database_at_start_says_where_and_what_to_check(
        pg: PostgresServer) -> None:
    from manager.db_postgres import PostgresDatabase

    url = pg.database("gone")
    pg.stop("fast")
    with pytest.raises(DatabaseUnavailable, match=r"cannot reach the database at "
                                                  r"postgresql://postgres@127\.0\.0\.1:\d+/gone"):
        PostgresDatabase(url)
    pg.start()


async def test_the_api_answers_503_while_the_database_is_down(
        pg: PostgresServer, tmp_path: Path) -> None:
    settings = Settings(db_path=tmp_path / "unused.db", db_url=pg.database("api"),
                        admin_token=ADMIN, secret_key=SECRET_KEY)
    server = ManagerServer(settings)
    await server.start()
    try:
        async with httpx.AsyncClient(base_url=server.url, timeout=10,
                                     headers={"Authorization": f"Bearer {ADMIN}"}) as http:
            made = await http.post("/api/tasks", json={"type": "t", "selectors": ["x"]})
            assert made.status_code == 201, made.text
            pg.stop("fast")
            down = await http.get("/api/tasks")
            assert down.status_code == 503, down.text
            assert down.headers["retry-after"] == "1"
            assert "try again shortly" in down.json()["detail"]
            pg.start()
            up = await http.get("/api/tasks")
            assert up.status_code == 200
            assert [t["task_id"] for t in up.json()["tasks"]] == [made.json()["task_id"]]
    finally:
        await server.stop()
