"""An execution as the API shows it: its row with each run's task status, error and
output, and a ``version`` that changes whenever any of them does (for long polls)."""

from __future__ import annotations

import hashlib
from typing import Any

from manager.db import dumps, loads
from manager.taskstore import TaskStore


def _run_view(run: dict[str, Any], store: TaskStore) -> dict[str, Any]:
    if run.get("task_id") is None:  # a SKIPPED rollback step keeps its status and reason
        return {**run, "output": None}
    task = store.get(run["task_id"])
    return {**run, "status": task["status"] if task else None,
            "error": task["error"] if task else None,
            "output": loads(task["output"]) if task else None}


def execution_view(row: Any, store: TaskStore) -> dict[str, Any] | None:
    if row is None:
        return None
    spec = loads(row["spec"])
    runs = [_run_view(run, store) for run in loads(row["runs"])]
    version = hashlib.sha256(dumps([row["status"], row["waiting_reason"], [
        (r["task_id"], r["status"]) for r in runs]]).encode()).hexdigest()[:16]
    return {"execution_id": row["execution_id"], "name": row["name"], "version": version,
            "service": spec["service"], "account_id": row["account_id"],
            "status": row["status"], "phase": row["phase"],
            "rollback_requested": bool(row["rollback_requested"]),
            "waiting_reason": row["waiting_reason"], "error": row["error"],
            "created_at": row["created_at"], "started_at": row["started_at"],
            "ended_at": row["ended_at"], "runs": runs,
            "infrastructure": spec.get("resolvedInfrastructure", spec.get("infrastructure"))}
