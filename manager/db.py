"""SQLite schema and the one connection the manager uses from its event loop.

WAL mode, short transactions (``with db.tx():``). Rows come back as ``sqlite3.Row``.
Secret values are stored only as Fernet blobs (see :mod:`manager.keys`).

Transaction discipline: the manager has one writer, the event loop thread, and a
transaction never spans an ``await``. ``tx()`` nested inside a transaction of the same
asyncio task joins it; entering one from another thread or another task while one is open
is a bug (it was: sync endpoints ran in a thread pool and interleaved their BEGINs), and
raises :class:`TransactionError` instead of corrupting the open one. What must follow a
commit (frames to delegates, wake-ups) is registered with :meth:`after_commit`, so
nothing is announced that a rollback then undoes."""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import structlog

from manager.errors import ManagerError

log = structlog.get_logger("manager.db")

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
CREATE TABLE IF NOT EXISTS meta (
    name TEXT PRIMARY KEY,
    value BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS idempotency (
    account_key TEXT NOT NULL,
    idem_key TEXT NOT NULL,
    kind TEXT NOT NULL,
    body_digest TEXT NOT NULL,
    resource_id TEXT NOT NULL,
    answer TEXT NOT NULL,
    created_at REAL NOT NULL,
    PRIMARY KEY (account_key, kind, idem_key)
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


def _private(path: Path) -> None:
    """Make the database owner-only before SQLite opens it: it holds token hashes, task
    params and encrypted secrets. SQLite gives -wal and -shm the main file's mode, and an
    older world-readable file is tightened."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    os.close(fd)
    for name in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        if name.exists():
            os.chmod(name, 0o600)


class Database:
    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        _private(path)
        # isolation_level=None: we open transactions ourselves, so they stay short and
        # explicit; check_same_thread=False because uvicorn may create the app elsewhere,
        # but every use is from the one event loop.
        self.conn = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
        self.conn.row_factory = sqlite3.Row
        self.conn.execute("PRAGMA journal_mode=WAL")
        self.conn.execute("PRAGMA synchronous=NORMAL")
        self.conn.execute("PRAGMA foreign_keys=ON")
        self.conn.executescript(SCHEMA)
        _migrate(self.conn)
        self._depth = 0
        self._owner: tuple[int, object] | None = None
        self._after: list[Callable[[], None]] = []

    @contextmanager
    def tx(self) -> Iterator[sqlite3.Connection]:
        me = _caller()
        if self._depth:
            if me != self._owner:
                raise TransactionError(
                    "a transaction was entered while another one is open on the manager's "
                    "connection (from another thread, or across an await); the manager "
                    "writes only from its event loop, one transaction at a time")
            self._depth += 1
            try:
                yield self.conn
            finally:
                self._depth -= 1
            return
        self.conn.execute("BEGIN IMMEDIATE")
        self._depth, self._owner = 1, me
        try:
            yield self.conn
        except BaseException:
            self.conn.execute("ROLLBACK")
            self._after.clear()
            raise
        else:
            self.conn.execute("COMMIT")
        finally:
            self._depth, self._owner = 0, None
        self._run_after()

    def after_commit(self, action: Callable[[], None]) -> None:
        """Run ``action`` once the open transaction commits (dropped if it rolls back);
        at once when no transaction is open."""
        if self._depth:
            self._after.append(action)
        else:
            action()

    def _run_after(self) -> None:
        # The transaction is committed: a failing follow-up must not look to the caller
        # as if its change failed (it would retry what is already stored).
        while self._after:
            action = self._after.pop(0)
            try:
                action()
            except Exception:
                log.exception("an action after a commit failed")

    def one(self, sql: str, *args: Any) -> sqlite3.Row | None:
        row: sqlite3.Row | None = self.conn.execute(sql, args).fetchone()
        return row

    def all(self, sql: str, *args: Any) -> list[sqlite3.Row]:
        return list(self.conn.execute(sql, args).fetchall())

    def run(self, sql: str, *args: Any) -> int:
        return self.conn.execute(sql, args).rowcount

    def close(self) -> None:
        self.conn.close()


class TransactionError(ManagerError):
    """The transaction discipline was broken (see the module docstring)."""


def _caller() -> tuple[int, object]:
    try:
        task: object = asyncio.current_task()
    except RuntimeError:
        task = None
    return threading.get_ident(), task


# Columns added after the first release: (table, column, definition).
_ADDED_COLUMNS = (
    ("tasks", "late_result", "INTEGER NOT NULL DEFAULT 0"),
)


def _migrate(conn: sqlite3.Connection) -> None:
    for table, column, definition in _ADDED_COLUMNS:
        have = {row[1] for row in conn.execute(f"PRAGMA table_info({table})")}
        if column not in have:
            conn.execute(f"ALTER TABLE {table} ADD COLUMN {column} {definition}")


def now() -> float:
    return time.time()


def dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), default=str)


def loads(text: str | None) -> Any:
    return None if text is None else json.loads(text)
