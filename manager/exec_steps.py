"""What one execution step becomes: the task to queue (params with the infrastructure
merged in and the manager's expressions resolved, the context the delegate renders
manifests with), or the reason it is skipped or fails before it reaches a delegate.
Pure: the caller reads the rows and stores the result."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from manager.expressions import ExpressionError, MissingOutput, Resolver
from manager.models import Step
from manager.taskstore import NewTask
from wire.protocol import TaskStatus

_INFRA_PARAMS = ("region", "cluster", "credentials")


@dataclass(frozen=True)
class Earlier:
    """The steps that ran before this one: step id -> output, and -> task status."""

    outputs: dict[str, dict[str, Any]]
    statuses: dict[str, TaskStatus]


@dataclass(frozen=True)
class StepPlan:
    task: NewTask
    error: str | None = None  # fails at once: its task ends FAILED with this error
    skipped: str | None = None  # a rollback step with nothing to roll back: no task


def earlier_of(runs: list[dict[str, Any]], tasks: dict[str, Any]) -> Earlier:
    """Outputs and statuses of the finished runs (``tasks``: task id -> task row)."""
    outputs: dict[str, dict[str, Any]] = {}
    statuses: dict[str, TaskStatus] = {}
    for run in runs:
        task = tasks.get(run["task_id"] or "")
        if task is None or not TaskStatus(task["status"]).finished:
            continue
        outputs[run["step_id"]] = task["output"] or {}
        statuses[run["step_id"]] = TaskStatus(task["status"])
    return Earlier(outputs, statuses)


def _context(execution_id: str, spec: dict[str, Any], earlier: Earlier) -> dict[str, Any]:
    infra = spec.get("infrastructure") or {}
    return {
        "artifact": spec.get("artifact") or {},
        "primary": {"artifact": spec.get("artifact") or {}},
        "serviceVariables": spec.get("serviceVariables") or {},
        "env": spec.get("env") or {},
        "infra": {k: infra.get(k) for k in ("region", "cluster")},
        "execution": {"id": execution_id, "name": spec["name"],
                      "steps": {k: {"output": v} for k, v in earlier.outputs.items()}},
    }


def skip_reason(exc: MissingOutput, earlier: Earlier) -> str | None:
    """Why a rollback step has nothing to do, or None when the missing output is a real
    error (its step succeeded and still lacks it: the execution file names a wrong key)."""
    status = earlier.statuses.get(exc.step_id)
    if status is None or status == TaskStatus.SUCCESS:
        return None
    return (f"step {exc.step_id} ended {status} before it recorded output {exc.key!r}, "
            "so there is nothing of it to roll back")


def plan_step(*, execution_id: str, account_id: str | None, spec: dict[str, Any],
              step: Step, phase: str, earlier: Earlier, secrets: dict[str, str]) -> StepPlan:
    infra = spec.get("infrastructure") or {}
    where = f"{'steps' if phase == 'steps' else 'rollbackSteps'}[{step.id}].params"
    params = dict(step.params)
    for key in _INFRA_PARAMS:
        if key not in params and infra.get(key) is not None:
            params[key] = infra[key]
    error = skipped = None
    try:
        params = Resolver(outputs=earlier.outputs, infra=infra).resolve(params, where)
    except MissingOutput as exc:
        skipped = skip_reason(exc, earlier) if phase == "rollback" else None
        error = None if skipped else str(exc)
    except ExpressionError as exc:
        error = str(exc)
    selectors = step.selectors if step.selectors is not None else spec.get("selectors") or []
    task = NewTask(type=step.type, selectors=selectors, params=params, secrets=dict(secrets),
                   context=_context(execution_id, spec, earlier),
                   timeout=step.timeout or 3600.0, account_id=account_id,
                   execution_id=execution_id, step_id=step.id)
    return StepPlan(task=task, error=error, skipped=skipped)
