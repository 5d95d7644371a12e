"""The manager on PostgreSQL: the same :class:`~manager.db.Database` (one connection used
from the event loop, short explicit transactions, SQL written with ``?``), over psycopg.

Why one connection and not a pool: every statement runs on the event loop between two
awaits and no transaction spans an await (manager.db), so a second connection would never
be used at the same time as the first. What a pool would add is kept: the connection is
checked and re-made after the server restarts or the network drops it, and every
statement has a time limit so a locked row cannot stall the loop for long."""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg
import structlog
from psycopg.rows import RowMaker

from manager.db import Database, DatabaseUnavailable

log = structlog.get_logger("manager.db")

# Serialises schema migration between replicas starting together (any constant will do;
# this one spells "ecsdlgt" in ASCII).
_SCHEMA_LOCK = 0x65637364_6C6774


class Row(tuple[Any, ...]):
    """A row that indexes by position and by column name, as ``sqlite3.Row`` does."""

    _names: dict[str, int]

    def __getitem__(self, key: Any) -> Any:
        if isinstance(key, str):
            return tuple.__getitem__(self, self._names[key])
        return tuple.__getitem__(self, key)

    def keys(self) -> list[str]:
        return list(self._names)


def _row_factory(cursor: psycopg.Cursor[Any]) -> RowMaker[Row]:
    names = {col.name: i for i, col in enumerate(cursor.description or ())}

    def make(values: Sequence[Any]) -> Row:
        row = Row(values)
        row._names = names
        return row

    return make


@functools.lru_cache(maxsize=1024)
def translate(sql: str) -> str:
    """``?`` placeholders to psycopg's ``%s`` (and a literal ``%`` doubled), leaving
    quoted text alone."""
    out: list[str] = []
    quote: str | None = None
    for ch in sql:
        if quote:
            out.append("%%" if ch == "%" else ch)
            if ch == quote:
                quote = None
        elif ch in ("'", '"'):
            quote = ch
            out.append(ch)
        elif ch == "?":
            out.append("%s")
        elif ch == "%":
            out.append("%%")
        else:
            out.append(ch)
    return "".join(out)


def _display(url: str) -> str:
    parts = urlsplit(url)
    host = parts.hostname or ""
    netloc = (f"{parts.username}@" if parts.username else "") + host + (
        f":{parts.port}" if parts.port else "")
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


class PostgresDatabase(Database):
    dialect = "postgresql"
    for_update = " FOR UPDATE"
    skip_locked = " FOR UPDATE SKIP LOCKED"
    IntegrityError = psycopg.errors.UniqueViolation

    def __init__(self, url: str, *, statement_timeout_ms: int = 5000,
                 connect_timeout: int = 5) -> None:
        super().__init__()
        self._url = url.replace("postgres://", "postgresql://", 1)
        self.display_url = _display(self._url)
        self.sqlalchemy_url = self._url.replace("postgresql://", "postgresql+psycopg://", 1)
        self._options = f"-c statement_timeout={statement_timeout_ms}"
        self._connect_timeout = connect_timeout
        self._conn: psycopg.Connection[Row] | None = None
        self._connect()
        from manager.schema import ensure_schema

        ensure_schema(self)

    def _connect(self) -> psycopg.Connection[Row]:
        try:
            # Client-side binding: SQL written for SQLite compares untyped parameters
            # (``? IS NULL``), which server-side binding cannot type.
            self._conn = psycopg.connect(self._url, autocommit=True, row_factory=_row_factory,
                                         cursor_factory=psycopg.ClientCursor,
                                         options=self._options,
                                         connect_timeout=self._connect_timeout)
        except psycopg.OperationalError as exc:
            raise DatabaseUnavailable(
                f"cannot reach the database at {self.display_url}: "
                f"{str(exc).strip().splitlines()[-1] if str(exc).strip() else exc}; check "
                "that PostgreSQL runs there and --db/MANAGER_DB") from None
        return self._conn

    @property
    def conn(self) -> psycopg.Connection[Row]:
        """The connection, re-made if the server dropped it (never inside a transaction:
        what the transaction did is gone, and the caller must see that)."""
        conn = self._conn
        if conn is None or conn.closed or conn.broken:
            if self._depth:
                raise DatabaseUnavailable("the database connection was lost in the middle "
                                          "of a transaction; it was rolled back")
            if conn is not None:
                log.warning("reconnecting to the database", url=self.display_url)
            return self._connect()
        return conn

    def _call(self, fn: Any, *args: Any) -> Any:
        try:
            return fn(*args)
        except psycopg.OperationalError as exc:
            raise DatabaseUnavailable(f"the database at {self.display_url} failed: "
                                      f"{str(exc).strip() or type(exc).__name__}") from None

    def _again(self, sql: str, args: Sequence[Any] = ()) -> Any:
        """Run a statement that may safely run twice (BEGIN, a read outside a
        transaction): a connection the server dropped while idle (a restart, a failover)
        is only found when used, so it is re-made and the statement sent once more."""
        try:
            return self.conn.execute(sql, args)
        except psycopg.OperationalError:
            if self._conn is not None and not self._conn.closed:
                self._conn.close()
            return self._call(self.conn.execute, sql, args)

    def _begin(self) -> None:
        self._again("BEGIN")

    def _end(self, commit: bool) -> None:
        conn = self._conn
        if conn is None or conn.closed or conn.broken:
            if commit:
                raise DatabaseUnavailable("the database connection was lost before the "
                                          "transaction committed; nothing was stored")
            return
        self._call(conn.execute, "COMMIT" if commit else "ROLLBACK")

    def _execute(self, sql: str, args: Sequence[Any]) -> Any:
        if not self._depth and sql.lstrip()[:6].upper() == "SELECT":
            return self._again(translate(sql), tuple(args))
        return self._call(self.conn.execute, translate(sql), tuple(args))

    def many(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        with self.conn.cursor() as cur:
            self._call(cur.executemany, translate(sql), list(rows))

    def insert_id(self, sql: str, *args: Any) -> int:
        row = self._execute(sql + " RETURNING id", args).fetchone()
        return int(row[0])

    def script(self, sql: str) -> None:
        self._call(self.conn.execute, sql)

    def json_text(self, column: str, key: str) -> str:
        return f"({column}::jsonb ->> '{key}')"

    def has_table(self, name: str) -> bool:
        row = self.one("SELECT to_regclass(?)", name)
        return row is not None and row[0] is not None

    @contextmanager
    def schema_lock(self) -> Iterator[None]:
        self.run("SELECT pg_advisory_lock(?)", _SCHEMA_LOCK)
        try:
            yield
        finally:
            self.run("SELECT pg_advisory_unlock(?)", _SCHEMA_LOCK)

    async def notifications(self, channel: str,
                            on_listening: Callable[[], None]) -> AsyncIterator[str]:
        """The payloads NOTIFY sends on ``channel``, from a connection of its own (the
        main one is used synchronously from the event loop); ``on_listening`` runs once
        LISTEN is in place, so what it reads cannot miss a notification."""
        conn = await psycopg.AsyncConnection.connect(
            self._url, autocommit=True, connect_timeout=self._connect_timeout)
        async with conn:
            await conn.execute(f"LISTEN {channel}")
            on_listening()
            async for note in conn.notifies():
                yield note.payload

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
