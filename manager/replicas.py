"""The manager replicas serving one database, and the delegates connected to each.

Each replica has a row it refreshes every watchdog pass; a replica whose row is older
than ``replica_ttl`` is dead (SIGKILL, a lost machine). Its delegates reconnect through
the load balancer to another replica on their own and resume there (registration
reconciles what they run); what the sweep of a dead replica does is for those that do not
come back: their sessions are marked disconnected, and tasks assigned over them but never
accepted go back to the queue. Running tasks are left to their leases.

What a replica holds in memory is only the websockets of its own delegates (and their
credit, which each ``pull`` restates) and the waiters of long polls. Who is connected,
where, and with which tags is read from the ``delegates`` rows, so every replica gives the
same waiting reasons."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import structlog

from manager.db import Database, loads, now
from wire.protocol import DelegateState

log = structlog.get_logger("manager.replicas")
_DOWN = DelegateState.DISCONNECTED.value


@dataclass(frozen=True)
class Peer:
    """A connected delegate as the database has it (whichever replica holds it)."""

    session_id: str
    delegate_id: str
    account_id: str
    name: str
    tags: frozenset[str]
    task_types: frozenset[str]
    draining: bool
    closed: bool = False

    def label(self) -> str:
        return f"{self.name} [{', '.join(sorted(self.tags))}]"


class Replicas:
    def __init__(self, db: Database, replica_id: str, ttl: float) -> None:
        self.db = db
        self.replica_id = replica_id
        self.ttl = ttl

    def join(self) -> None:
        t = now()
        with self.db.tx():
            self.db.run("INSERT INTO replicas (replica_id, hostname, pid, started_at, "
                        "heartbeat_at) VALUES (?, ?, ?, ?, ?)", self.replica_id,
                        socket.gethostname(), os.getpid(), t, t)
        log.info("manager replica joined", replica=self.replica_id)

    def beat(self) -> bool:
        """Refresh this replica's row; False if another replica had presumed it dead and
        swept it (its sessions must then be closed: the database no longer routes to
        them). The row is made again."""
        with self.db.tx():
            if self.db.run("UPDATE replicas SET heartbeat_at = ? WHERE replica_id = ?",
                           now(), self.replica_id):
                return True
        log.warning("this replica was presumed dead by another one; closing its sessions",
                    replica=self.replica_id)
        self.join()
        return False

    def dead(self, *, every_other: bool = False) -> list[str]:
        """Replicas whose row is older than the TTL (``every_other``: all but this one,
        for a SQLite manager starting, which is alone on its file by construction)."""
        if every_other:
            rows = self.db.all("SELECT replica_id FROM replicas WHERE replica_id != ?",
                               self.replica_id)
        else:
            rows = self.db.all("SELECT replica_id FROM replicas WHERE heartbeat_at < ? AND "
                               "replica_id != ?", now() - self.ttl, self.replica_id)
        return [r["replica_id"] for r in rows]

    def forget(self, replica_id: str) -> list[str]:
        """Sessions of a dead replica: mark its delegates disconnected; return the tasks
        assigned over its sessions and never accepted (the caller requeues them). Call
        inside a transaction."""
        assigned = [r["task_id"] for r in self.db.all(
            "SELECT t.task_id FROM tasks t JOIN delegates d ON d.session_id = t.session_id "
            "WHERE t.status = 'ASSIGNED' AND d.replica_id = ? ORDER BY t.task_id",
            replica_id)]
        self.db.run("UPDATE delegates SET state = ?, session_id = NULL, replica_id = NULL "
                    "WHERE replica_id = ?", _DOWN, replica_id)
        self.db.run("DELETE FROM replicas WHERE replica_id = ?", replica_id)
        return assigned

    def unplaced(self) -> int:
        """Mark disconnected the delegate rows that say connected but name no replica
        (written before replicas were recorded, or by a manager whose row is gone):
        nobody holds their websocket."""
        return self.db.run("UPDATE delegates SET state = ?, session_id = NULL WHERE "
                           "replica_id IS NULL AND state != ?", _DOWN, _DOWN)

    def orphaned(self) -> list[str]:
        """ASSIGNED tasks whose session no live delegate row names any more (its replica
        was swept, or the delegate came back on another session)."""
        return [r["task_id"] for r in self.db.all(
            "SELECT task_id FROM tasks t WHERE status = 'ASSIGNED' AND NOT EXISTS "
            "(SELECT 1 FROM delegates d WHERE d.session_id = t.session_id AND "
            "d.state != ?) ORDER BY task_id", _DOWN)]

    def connected(self) -> list[Peer]:
        rows = self.db.all("SELECT session_id, delegate_id, account_id, name, tags, "
                           "task_types, state FROM delegates WHERE state != ? AND "
                           "session_id IS NOT NULL ORDER BY connected_at, delegate_id",
                           _DOWN)
        return list(_peers(rows))


def _peers(rows: Iterable[Any]) -> Iterable[Peer]:
    for r in rows:
        yield Peer(session_id=r["session_id"], delegate_id=r["delegate_id"],
                   account_id=r["account_id"], name=r["name"],
                   tags=frozenset(loads(r["tags"])),
                   task_types=frozenset(loads(r["task_types"])),
                   draining=r["state"] == DelegateState.DRAINING.value)
