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
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from pathlib import Path
from typing import Any

import structlog

from manager.errors import ManagerError

log = structlog.get_logger("manager.db")

def _private(path: Path) -> None:
    """Make the database owner-only before SQLite opens it: it holds token hashes, task
    params and encrypted secrets. SQLite gives -wal and -shm the main file's mode, and an
    older world-readable file is tightened."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    os.close(fd)
    for name in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        if name.exists():
            os.chmod(name, 0o600)


class Database(ABC):
    """One connection, used from the event loop, with the transaction discipline of the
    module docstring. Subclasses supply the connection (:class:`SqliteDatabase`, and
    ``manager.db_postgres.PostgresDatabase``); SQL is written once, with ``?``
    placeholders, in the subset both backends speak."""

    dialect = "sqlite"
    # Row locks for a SELECT inside a transaction: SQLite has none (its one writer holds
    # the whole database from BEGIN IMMEDIATE); PostgreSQL's replicas need them.
    for_update = ""
    skip_locked = ""
    # What a unique constraint's violation raises (a duplicate key).
    IntegrityError: type[Exception] = sqlite3.IntegrityError

    def __init__(self) -> None:
        self._depth = 0
        self._owner: tuple[int, object] | None = None
        self._after: list[Callable[[], None]] = []
        self._before: list[Callable[[], None]] = []
        # Which transaction is open (a new number at each outermost BEGIN), for callers
        # that gather something per transaction.
        self.tx_number = 0

    # -- what a backend provides ------------------------------------------------------
    @abstractmethod
    def _begin(self) -> None:
        ...

    @abstractmethod
    def _end(self, commit: bool) -> None:
        ...

    @abstractmethod
    def _execute(self, sql: str, args: Sequence[Any]) -> Any:
        """A cursor with the statement executed (rows as :class:`Row`-like objects that
        index by name and by position)."""

    @abstractmethod
    def many(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        ...

    @abstractmethod
    def insert_id(self, sql: str, *args: Any) -> int:
        """Run an INSERT into a table with an ``id`` serial; returns the new id."""

    @abstractmethod
    def close(self) -> None:
        ...

    @abstractmethod
    def has_table(self, name: str) -> bool:
        ...

    @abstractmethod
    def script(self, sql: str) -> None:
        """Run several statements (the schema), outside any transaction."""

    def json_text(self, column: str, key: str) -> str:
        """SQL for the text at ``key`` of a JSON ``column`` (``key`` is the code's own
        constant, never user input): the one expression the backends spell differently."""
        return f"json_extract({column}, '$.{key}')"

    def schema_lock(self) -> AbstractContextManager[None]:
        """Held while the schema is checked and migrated at start-up."""
        return nullcontext()

    # Where the database is, for messages (no password), and for SQLAlchemy (migrations).
    display_url = ""
    sqlalchemy_url = ""

    # -- shared -------------------------------------------------------------------------
    @contextmanager
    def tx(self) -> Iterator[None]:
        me = _caller()
        if self._depth:
            if me != self._owner:
                raise TransactionError(
                    "a transaction was entered while another one is open on the manager's "
                    "connection (from another thread, or across an await); the manager "
                    "writes only from its event loop, one transaction at a time")
            self._depth += 1
            try:
                yield
            finally:
                self._depth -= 1
            return
        self._begin()
        self._depth, self._owner = 1, me
        self.tx_number += 1
        try:
            yield
            while self._before:  # still inside the transaction: a failure rolls it back
                self._before.pop(0)()
        except BaseException:
            self._end(commit=False)
            self._after.clear()
            self._before.clear()
            raise
        else:
            self._end(commit=True)
        finally:
            self._depth, self._owner = 0, None
        self._run_after()

    @property
    def in_transaction(self) -> bool:
        return self._depth > 0

    def before_commit(self, action: Callable[[], None]) -> None:
        """Run ``action`` as the last statement(s) of the open transaction (at once when
        none is open): what must be written with the transaction, gathered first."""
        if self._depth:
            self._before.append(action)
        else:
            action()

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

    def one(self, sql: str, *args: Any) -> Any:
        return self._execute(sql, args).fetchone()

    def all(self, sql: str, *args: Any) -> list[Any]:
        return list(self._execute(sql, args).fetchall())

    def run(self, sql: str, *args: Any) -> int:
        count: int = self._execute(sql, args).rowcount
        return count


class SqliteDatabase(Database):
    """The embedded default: one file, WAL mode."""

    def __init__(self, path: Path) -> None:
        super().__init__()
        self.path = path
        self.display_url = str(path)
        self.sqlalchemy_url = f"sqlite:///{path}"
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
        from manager.schema import ensure_schema

        ensure_schema(self)

    def _begin(self) -> None:
        self.conn.execute("BEGIN IMMEDIATE")

    def _end(self, commit: bool) -> None:
        self.conn.execute("COMMIT" if commit else "ROLLBACK")

    def _execute(self, sql: str, args: Sequence[Any]) -> Any:
        return self.conn.execute(sql, tuple(args))

    def many(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        self.conn.executemany(sql, rows)

    def insert_id(self, sql: str, *args: Any) -> int:
        rowid = self.conn.execute(sql, args).lastrowid
        assert rowid is not None
        return rowid

    def script(self, sql: str) -> None:
        self.conn.executescript(sql)

    def has_table(self, name: str) -> bool:
        return self.one("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?",
                        name) is not None

    def close(self) -> None:
        self.conn.close()


def open_database(target: str | Path) -> Database:
    """The database ``target`` names: a ``postgresql://`` URL, or a SQLite file (a path,
    or ``sqlite:PATH``)."""
    text = str(target)
    if text.startswith(("postgresql://", "postgres://")):
        from manager.db_postgres import PostgresDatabase

        return PostgresDatabase(text)
    if text.startswith("sqlite:"):
        text = text.removeprefix("sqlite:").removeprefix("//")
    return SqliteDatabase(Path(text))


class DatabaseUnavailable(ManagerError):
    """The database cannot be reached now (a PostgreSQL server restarting, a network
    fault); the request may be retried (the HTTP API answers 503)."""


class TransactionError(ManagerError):
    """The transaction discipline was broken (see the module docstring)."""


def _caller() -> tuple[int, object]:
    try:
        task: object = asyncio.current_task()
    except RuntimeError:
        task = None
    return threading.get_ident(), task


def now() -> float:
    return time.time()


def dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), default=str)


def loads(text: str | None) -> Any:
    return None if text is None else json.loads(text)
