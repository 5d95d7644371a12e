"""Re-running an execution with exactly the inputs it ran with: the same stored spec
(the same definitions' revisions, the same secrets), and the artifact as it was resolved
then — pinned to its digest, so a tag pushed since changes nothing."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException

from manager.api import answers, require_admin, state
from manager.artifact_phase import pinned
from manager.by_reference import inputs_of
from manager.db import dumps, loads
from manager.definitions import definitions_of
from manager.models import ExecutionSubmitted
from manager.provisioning import RESOLVED_KEY
from manager.state import State

router = APIRouter(prefix="/api", dependencies=[Depends(require_admin)],
                   responses=answers(401), tags=["executions"])
StateDep = Annotated[State, Depends(state)]


def _outputs(st: State, runs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    outputs = {}
    for run in runs:
        task = st.store.get(run["task_id"]) if run.get("task_id") else None
        if task is not None and task["status"] == "SUCCESS":
            outputs[run["step_id"]] = loads(task["output"]) or {}
    return outputs


def rerun(st: State, execution_id: str) -> str:
    row = st.db.one("SELECT * FROM executions WHERE execution_id = ?", execution_id)
    if row is None:
        raise HTTPException(404, f"no execution {execution_id}")
    spec = pinned(loads(row["spec"]), _outputs(st, loads(row["runs"])))
    # Where it deploys is resolved again from the provisioner's new outputs.
    spec = {k: v for k, v in spec.items() if k != RESOLVED_KEY}
    defs = definitions_of(st.db)
    with st.db.tx():
        new_id = st.executions.submit_stored(spec, account_id=row["account_id"],
                                             sealed=row["secrets_sealed"])
        for used in defs.used_by(execution_id):
            st.db.run("INSERT INTO execution_definitions (execution_id, account_id, kind, "
                      "name, revision) VALUES (?,?,?,?,?)", new_id,
                      row["account_id"] or "", used["kind"], used["name"], used["revision"])
        inputs = inputs_of(st.db, execution_id)
        if inputs is not None:
            st.db.run("INSERT INTO execution_inputs (execution_id, effective) VALUES (?, ?)",
                      new_id, dumps(inputs))
    return new_id


@router.post("/executions/{execution_id}/rerun", response_model=ExecutionSubmitted,
             status_code=201, responses=answers(404))
async def rerun_execution(execution_id: str, st: StateDep) -> dict[str, Any]:
    """Run the execution again with the inputs it ran with, its artifact pinned to the
    digest it resolved (no new look-up)."""
    new_id = rerun(st, execution_id)
    view = st.executions.view(new_id) or {}
    return {"execution_id": new_id, "status": view.get("status", "QUEUED"),
            "waiting_reason": view.get("waiting_reason")}
