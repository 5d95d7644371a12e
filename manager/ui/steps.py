"""An execution as the console draws it: every step and rollback step of its file in
order, those that ran with their task (status, timing, command units, outputs, error,
the end of their log), those still to come as pending; and the failure summary."""

from __future__ import annotations

from typing import Any

from manager.api import task_view
from manager.state import State
from manager.ui import queries


def step_card(st: State, run: dict[str, Any], kind: str, with_log: bool) -> dict[str, Any]:
    task_id = run.get("task_id")
    row = st.store.get(task_id) if task_id else None
    task = task_view(st, row) if row is not None else None
    card = {"key": f"{run['phase']}-{run['step_id']}", "step_id": run["step_id"],
            "phase": run["phase"], "type": kind, "task_id": task_id,
            "status": run.get("status") or "PENDING", "error": run.get("error"),
            "output": run.get("output") or {}, "task": task,
            "rolls_back": run.get("rolls_back"), "log": None}
    if task is not None and with_log:
        card["log"] = queries.log_page(st, task_id or "", None)
    return card


def cards(st: State, view: dict[str, Any], with_log: bool = True) -> list[dict[str, Any]]:
    planned = queries.planned_steps(st, view["execution_id"])
    types = {(p["phase"], p["step_id"]): p["type"] for p in planned}
    ran = {(r["phase"], r["step_id"]) for r in view["runs"]}
    out = [step_card(st, r, types.get((r["phase"], r["step_id"]), ""), with_log)
           for r in view["runs"]]
    if view["status"] not in ("SUCCESS", "FAILED", "ABORTED", "ROLLED_BACK"):
        # Steps still to come, as the file orders them; rollback steps run only on
        # failure or request, so they are listed only once the execution rolls back.
        out += [step_card(st, {**p, "task_id": None}, p["type"], False) for p in planned
                if (p["phase"], p["step_id"]) not in ran
                and (p["phase"] == "steps" or view["phase"] == "rollback")]
    return out


def failure(st: State, view: dict[str, Any], steps: list[dict[str, Any]]
            ) -> dict[str, Any] | None:
    """What went wrong, said once at the top: the execution's error, the step that
    failed with its error, and (ECS deployments) the stopped tasks' reasons."""
    failed = [s for s in steps if s["phase"] == "steps"
              and s["status"] in ("FAILED", "TIMED_OUT", "LOST")]
    if not failed and not view.get("error"):
        return None
    step = failed[0] if failed else None
    return {"error": view.get("error"), "step": step,
            "stopped": queries.stopped_tasks(st, step["task_id"]) if step else [],
            "rolled_back": [s for s in steps if s["phase"] == "rollback"]}
