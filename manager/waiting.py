"""Why each queued task waits, stored on the task so every reader (the API, the console,
the CLI) sees the same words. Computed from the delegates the database has connected,
whichever replica holds them."""

from __future__ import annotations

from manager.db import Database, loads
from manager.dispatch import waiting_reason
from manager.replicas import Peer


def refresh(db: Database, peers: list[Peer], task_ids: list[str] | None = None) -> None:
    sql = ("SELECT task_id, account_id, type, selectors, waiting_reason FROM tasks "
           "WHERE status = 'QUEUED'")
    if task_ids is None:
        rows = db.all(sql + " ORDER BY task_id")
    elif not task_ids:
        return
    else:
        marks = ", ".join("?" for _ in task_ids)
        rows = db.all(f"{sql} AND task_id IN ({marks}) ORDER BY task_id", *task_ids)
    changes = []
    for row in rows:
        reason = waiting_reason(peers, row["account_id"], row["type"],
                                set(loads(row["selectors"])))
        if (row["waiting_reason"] or "").startswith("rejected by") and \
                reason.startswith("waiting for a free slot"):
            continue
        if reason != row["waiting_reason"]:
            changes.append((reason, row["task_id"]))
    if changes:
        # Rows in task_id order: two replicas refreshing at once lock them in the same
        # order, so they wait for each other instead of deadlocking.
        with db.tx():
            db.many("UPDATE tasks SET waiting_reason = ? WHERE task_id = ? AND "
                    "status = 'QUEUED'", [(r, t) for r, t in changes])
