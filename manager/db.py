"""SQLite schema and the one connection the manager uses from its event loop.

WAL mode, short transactions (``with db.tx():``). Rows come back as ``sqlite3.Row``.
Secret values are stored only as Fernet blobs (see :mod:`manager.keys`)."""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

SCHEMA = """
CREATE TABLE IF NOT EXISTS tokens (
    token_id TEXT PRIMARY KEY,
    account_id TEXT NOT NULL,
    name TEXT NOT NULL DEFAULT '',
    created_at REAL NOT NULL,
    revoked_at REAL,
    key_sealed BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS delegates (
    delegate_id TEXT PRIMARY KEY,
    account_id TEXT NOT NULL,
    name TEXT NOT NULL,
    instance_id TEXT NOT NULL,
    token_id TEXT NOT NULL,
    tags TEXT NOT NULL,
    version TEXT NOT NULL,
    hostname TEXT NOT NULL,
    capacity INTEGER NOT NULL,
    task_types TEXT NOT NULL,
    state TEXT NOT NULL,
    connected_at REAL,
    last_heartbeat REAL,
    UNIQUE (account_id, name, instance_id)
);
CREATE TABLE IF NOT EXISTS tasks (
    task_id TEXT PRIMARY KEY,
    account_id TEXT,
    type TEXT NOT NULL,
    selectors TEXT NOT NULL,
    params TEXT NOT NULL,
    secrets_sealed BLOB,
    context TEXT NOT NULL,
    timeout REAL NOT NULL,
    status TEXT NOT NULL,
    created_at REAL NOT NULL,
    assigned_at REAL,
    started_at REAL,
    ended_at REAL,
    delegate_id TEXT,
    instance_id TEXT,
    session_id TEXT,
    last_seq INTEGER NOT NULL DEFAULT 0,
    output TEXT,
    error TEXT,
    waiting_reason TEXT,
    log_bytes INTEGER NOT NULL DEFAULT 0,
    truncated INTEGER NOT NULL DEFAULT 0,
    abort_reason TEXT,
    execution_id TEXT,
    step_id TEXT
);
CREATE INDEX IF NOT EXISTS tasks_status ON tasks (status, created_at);
CREATE TABLE IF NOT EXISTS entries (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    task_id TEXT NOT NULL,
    seq INTEGER,
    kind TEXT NOT NULL,
    unit TEXT,
    data TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS entries_task ON entries (task_id, id);
CREATE TABLE IF NOT EXISTS units (
    task_id TEXT NOT NULL,
    unit TEXT NOT NULL,
    status TEXT NOT NULL,
    started_at TEXT,
    ended_at TEXT,
    first_entry INTEGER NOT NULL,
    PRIMARY KEY (task_id, unit)
);
CREATE TABLE IF NOT EXISTS executions (
    execution_id TEXT PRIMARY KEY,
    account_id TEXT,
    name TEXT NOT NULL,
    service_key TEXT NOT NULL,
    spec TEXT NOT NULL,
    secrets_sealed BLOB,
    status TEXT NOT NULL,
    phase TEXT NOT NULL,
    runs TEXT NOT NULL,
    plan TEXT NOT NULL,
    waiting_reason TEXT,
    error TEXT,
    abort_requested INTEGER NOT NULL DEFAULT 0,
    rollback_requested INTEGER NOT NULL DEFAULT 0,
    created_at REAL NOT NULL,
    started_at REAL,
    ended_at REAL
);
CREATE TABLE IF NOT EXISTS files (
    account_id TEXT NOT NULL,
    path TEXT NOT NULL,
    content BLOB NOT NULL,
    size INTEGER NOT NULL,
    sha256 TEXT NOT NULL,
    updated_at REAL NOT NULL,
    PRIMARY KEY (account_id, path)
);
"""


class Database:
    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        # isolation_level=None: we open transactions ourselves, so they stay short and
        # explicit; check_same_thread=False because uvicorn may create the app elsewhere,
        # but every use is from the one event loop.
        self.conn = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
        self.conn.row_factory = sqlite3.Row
        self.conn.execute("PRAGMA journal_mode=WAL")
        self.conn.execute("PRAGMA synchronous=NORMAL")
        self.conn.execute("PRAGMA foreign_keys=ON")
        self.conn.executescript(SCHEMA)
        self._depth = 0

    @contextmanager
    def tx(self) -> Iterator[sqlite3.Connection]:
        if self._depth:
            self._depth += 1
            try:
                yield self.conn
            finally:
                self._depth -= 1
            return
        self.conn.execute("BEGIN IMMEDIATE")
        self._depth = 1
        try:
            yield self.conn
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        else:
            self.conn.execute("COMMIT")
        finally:
            self._depth = 0

    def one(self, sql: str, *args: Any) -> sqlite3.Row | None:
        row: sqlite3.Row | None = self.conn.execute(sql, args).fetchone()
        return row

    def all(self, sql: str, *args: Any) -> list[sqlite3.Row]:
        return list(self.conn.execute(sql, args).fetchall())

    def run(self, sql: str, *args: Any) -> int:
        return self.conn.execute(sql, args).rowcount

    def close(self) -> None:
        self.conn.close()


def now() -> float:
    return time.time()


def dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), default=str)


def loads(text: str | None) -> Any:
    return None if text is None else json.loads(text)
