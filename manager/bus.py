"""What one manager replica tells the others: small topics with one text argument.

On PostgreSQL the replicas share one database and wake each other with ``NOTIFY``; the
server delivers a notification only when the transaction that sent it commits (and drops
it on rollback), so a replica never acts on a change it cannot yet read. On SQLite there is
one replica, and the bus only runs this replica's own handlers after the commit.

Topics (the handlers live with what they drive, see ``manager.hub``):

* ``dispatch`` — a task became QUEUED: replicas with free delegate slots assign it;
* ``send`` — a frame for a delegate whose websocket another replica holds;
* ``replaced`` / ``revoke`` — close sessions of a delegate / of a token;
* ``signal`` — a wake-up for log followers and execution watchers (``manager.signals``).

A notification can be lost while a replica's listening connection is being re-made: on
each (re)connect the ``on_connect`` callbacks catch up (dispatch again), and the
watchdog's pass dispatches too, so a lost wake-up costs at most one pass."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Callable

import structlog

from manager.db import Database

log = structlog.get_logger("manager.bus")

CHANNEL = "ecs_delegate"
# PostgreSQL refuses a NOTIFY payload of 8000 bytes or more.
MAX_PAYLOAD = 7900

Handler = Callable[[str], None]


class Bus:
    def __init__(self, db: Database, replica_id: str) -> None:
        self.db = db
        self.replica_id = replica_id
        self.shared = db.dialect == "postgresql"
        self._handlers: defaultdict[str, list[Handler]] = defaultdict(list)
        self.on_connect: list[Callable[[], None]] = []
        self._outgoing: dict[str, None] = {}  # payloads for this transaction's commit
        self._batch_of = -1  # the transaction they belong to
        self.connected = asyncio.Event() if self.shared else None

    def on(self, topic: str, handler: Handler) -> None:
        self._handlers[topic].append(handler)

    def publish(self, topic: str, arg: str = "", *, here: bool = True) -> None:
        """Run ``topic``'s handlers on every replica once the open transaction commits
        (at once outside one); ``here=False``: only on the other replicas."""
        if here:
            self.db.after_commit(lambda: self._run(topic, arg))
        if self.shared:
            payload = f"{self.replica_id} {topic} {arg}"
            if len(payload.encode()) > MAX_PAYLOAD:
                log.error("bus message too large, not sent", topic=topic,
                          bytes=len(payload.encode()))
                return
            # Gathered per transaction and sent in one statement at its end: a task
            # message that wakes followers and dispatchers costs one round trip, not one
            # per wake-up (the same payload twice is sent once, as NOTIFY would anyway).
            if not self.db.in_transaction:
                self.db.run("SELECT pg_notify(?, ?)", CHANNEL, payload)
                return
            if self._batch_of != self.db.tx_number:  # the first in this transaction
                self._batch_of, self._outgoing = self.db.tx_number, {}
                self.db.before_commit(self._send)
            self._outgoing[payload] = None

    def _send(self) -> None:
        payloads, self._outgoing = list(self._outgoing), {}
        if payloads:
            calls = ", ".join("pg_notify(?, ?)" for _ in payloads)
            self.db.run(f"SELECT {calls}", *(x for p in payloads for x in (CHANNEL, p)))

    def receive(self, payload: str) -> None:
        """A notification from the database: run its handlers unless it is our own."""
        origin, _, rest = payload.partition(" ")
        if origin == self.replica_id:
            return
        topic, _, arg = rest.partition(" ")
        self._run(topic, arg)

    def _run(self, topic: str, arg: str) -> None:
        for handler in self._handlers.get(topic, ()):
            try:
                handler(arg)
            except Exception:
                log.exception("bus handler failed", topic=topic)

    async def listen(self) -> None:
        """Receive the other replicas' notifications until cancelled (PostgreSQL only),
        re-making the listening connection after a database restart."""
        if not self.shared:
            return
        from manager.db_postgres import PostgresDatabase

        assert isinstance(self.db, PostgresDatabase)
        delay = 0.1
        while True:
            try:
                async for payload in self.db.notifications(CHANNEL, self._connected):
                    delay = 0.1
                    self.receive(payload)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("lost the database's notifications; listening again",
                            error=str(exc).strip().splitlines()[-1:] or type(exc).__name__)
            if self.connected is not None:
                self.connected.clear()
            await asyncio.sleep(delay)
            delay = min(delay * 2, 2.0)

    def _connected(self) -> None:
        if self.connected is not None:
            self.connected.set()
        for callback in self.on_connect:
            try:
                callback()
            except Exception:
                log.exception("catching up after listening again failed")
