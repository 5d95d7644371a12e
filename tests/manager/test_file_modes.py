"""The database, its WAL and shared-memory files and the secret key file are owner-only."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import httpx
import pytest

from manager.app import ManagerServer
from manager.keys import secret_key_file
from manager.settings import Settings
from tests.manager.conftest import ADMIN, Manager

# The files are SQLite's and the key file beside it; PostgreSQL has neither.
pytestmark = pytest.mark.sqlite_only


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


async def test_database_and_key_files_are_0600(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        db = tmp_path / "manager.db"
        # No secret key given: the manager makes its key file next to the database.
        server = ManagerServer(Settings(db_path=db, admin_token=ADMIN))
        await server.start()
        try:
            async with httpx.AsyncClient(base_url=server.url, headers={
                    "Authorization": f"Bearer {ADMIN}"}) as http:
                r = await http.post("/api/tasks", json={
                    "type": "test.echo", "selectors": ["nobody"], "secrets": {"k": "v"}})
                assert r.status_code == 201, r.text
            files = [db, db.with_name("manager.db-wal"), db.with_name("manager.db-shm"),
                     secret_key_file(db)]
            assert {f.name: _mode(f) for f in files} == {f.name: 0o600 for f in files}
        finally:
            await server.stop()
    finally:
        os.umask(old)


async def test_an_existing_world_readable_database_is_tightened(tmp_path: Path) -> None:
    db = tmp_path / "manager.db"
    db.touch(mode=0o644)
    os.chmod(db, 0o644)
    m = Manager(db)
    await m.start()
    try:
        assert _mode(db) == 0o600
    finally:
        await m.stop()
