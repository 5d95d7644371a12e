"""Pruning finished tasks and executions older than the retention age."""

from __future__ import annotations

from manager.db import Database
from manager.exec_states import FINISHED as EXECUTION_FINISHED
from manager.idempotency import prune_keys

_EXECUTION_FINISHED_SQL = "(" + ",".join(f"'{s.value}'" for s in EXECUTION_FINISHED) + ")"


def prune(db: Database, cutoff: float) -> int:
    """Delete executions finished before ``cutoff`` with their tasks, and standalone
    tasks finished before it. Returns how many tasks went."""
    finished = "('SUCCESS','FAILED','ABORTED','TIMED_OUT','LOST')"
    with db.tx():
        old_exec = [r["execution_id"] for r in db.all(
            "SELECT execution_id FROM executions WHERE ended_at IS NOT NULL AND ended_at < ? "
            f"AND status IN {_EXECUTION_FINISHED_SQL}", cutoff)]
        doomed = [r["task_id"] for r in db.all(
            f"SELECT task_id FROM tasks WHERE status IN {finished} AND ended_at < ? AND "
            f"(execution_id IS NULL OR execution_id NOT IN (SELECT execution_id FROM "
            f"executions))", cutoff)]
        for eid in old_exec:
            doomed += [r["task_id"] for r in db.all(
                "SELECT task_id FROM tasks WHERE execution_id = ?", eid)]
        for task_id in doomed:
            db.run("DELETE FROM entries WHERE task_id = ?", task_id)
            db.run("DELETE FROM units WHERE task_id = ?", task_id)
            db.run("DELETE FROM tasks WHERE task_id = ?", task_id)
        for eid in old_exec:
            db.run("DELETE FROM executions WHERE execution_id = ?", eid)
        prune_keys(db, cutoff)
    return len(doomed)
