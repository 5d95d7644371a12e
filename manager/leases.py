"""Leases: when the manager stops waiting for a delegate.

* A running task's lease runs from the last frame its delegate sent; past ``lease_ttl``
  the task is LOST (deployments are not idempotent, so it is not re-run).
* After the manager starts, no delegate has had a chance to come back: a delegate that
  lost its connection retries with a backoff capped at its ``RECONNECT_MAX_DELAY``
  (60 s by default). So no lease expires before ``lease_ttl + reconnect_grace`` after
  the start; ``reconnect_grace`` must be at least the delegates' cap. (Before this, an
  outage over ~30 s recorded finished work as LOST.)
* A session silent past the lease (socket open, nothing arriving: a frozen process) is
  closed, and its ASSIGNED tasks go back to the queue.
* A running task past its own timeout plus the lease is TIMED_OUT."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from manager.db import Database, now
from manager.sessions import Session
from manager.settings import Settings
from manager.taskstore import TaskStore
from wire.protocol import TaskStatus


@dataclass(frozen=True)
class Expiry:
    task_id: str
    delegate_id: str | None
    status: TaskStatus
    error: str
    abort_reason: str


def expiries(rows: list[Any], last_seen: dict[str, float], *, t: float, ttl: float,
             not_before: float) -> list[Expiry]:
    """Which running tasks end now, and how. Pure: ``rows`` are running tasks
    (task_id, delegate_id, started_at, timeout, name, last_heartbeat). A delegate was last
    seen at the later of what this replica saw and its last heartbeat, which any replica
    may have stored."""
    out = []
    for row in rows:
        seen = max(last_seen.get(row["delegate_id"] or "", 0.0),
                   row["last_heartbeat"] or 0.0)
        name = row["name"] or "?"
        if t > max(seen + ttl, not_before):
            out.append(Expiry(row["task_id"], row["delegate_id"], TaskStatus.LOST,
                              f"delegate {name} stopped answering; its tasks are presumed "
                              "lost", "lease expired"))
        elif row["started_at"] and t > row["started_at"] + row["timeout"] + ttl:
            out.append(Expiry(row["task_id"], row["delegate_id"], TaskStatus.TIMED_OUT,
                              f"no result from delegate {name} within the task's timeout "
                              f"({row['timeout']:g}s) plus the lease ({ttl:g}s)",
                              "timed out"))
    return out


class Leases:
    def __init__(self, settings: Settings, db: Database, store: TaskStore) -> None:
        self.settings = settings
        self.db = db
        self.store = store
        self.started_at = now()
        # Last time anything came from a delegate (by delegate_id): leases run from here.
        self.last_seen: dict[str, float] = {}

    @property
    def not_before(self) -> float:
        """No lease expires before this: the delegates' time to come back after a start."""
        return self.started_at + self.settings.lease_ttl + self.settings.reconnect_grace

    def silent(self, sessions: list[Session]) -> list[Session]:
        """Sessions that sent nothing for longer than the lease."""
        t = now()
        return [s for s in sessions if not s.closed
                and t > s.last_frame + self.settings.lease_ttl]

    def expire(self) -> list[Expiry]:
        """End the running tasks whose lease or timeout ran out; return them (the caller
        tells their delegates to stop them)."""
        rows = self.db.all("SELECT t.task_id, t.delegate_id, t.started_at, t.timeout, "
                           "d.name, d.last_heartbeat FROM tasks t LEFT JOIN delegates d ON "
                           "d.delegate_id = t.delegate_id WHERE t.status = 'RUNNING'")
        return [ex for ex in expiries(rows, self.last_seen, t=now(),
                                      ttl=self.settings.lease_ttl, not_before=self.not_before)
                if self.store.finish(ex.task_id, ex.status, error=ex.error)]
