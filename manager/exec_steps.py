"""What one execution step becomes: the task to queue (params with the manager's
expressions resolved; the context the delegate renders manifests with, and the
infrastructure it fills into the params of step types that declare it), or the reason
it is skipped or fails before it reaches a delegate. Pure: the caller reads the rows and
stores the result."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from manager.artifact_phase import MARK, context_artifact
from manager.expressions import ExpressionError, MissingOutput, Resolver
from manager.models import Step
from manager.provisioning import (
    IDS_KEY,
    RESOLVED_KEY,
    ProvisionerError,
    outputs_of,
    resolve_infrastructure,
)
from manager.taskstore import NewTask
from wire.protocol import PARAM_DEFAULTS, TaskStatus

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


def provisioned(spec: dict[str, Any], earlier: Earlier) -> dict[str, Any] | None:
    """The provisioner steps' outputs, once all of them succeeded (else None)."""
    succeeded = {k for k, v in earlier.statuses.items() if v == TaskStatus.SUCCESS}
    return outputs_of(spec, earlier.outputs, succeeded)


def infrastructure(spec: dict[str, Any], earlier: Earlier) -> dict[str, Any]:
    """The execution's infrastructure with its ``<+provisioner.NAME>`` fields resolved
    (left out while the provisioner steps have not all succeeded)."""
    return resolve_infrastructure(spec.get("infrastructure") or {},
                                  provisioned(spec, earlier))


def infrastructure_to_record(spec: dict[str, Any], step: Step,
                             earlier: Earlier) -> dict[str, Any] | None:
    """The spec with the resolved infrastructure recorded, when ``step`` is the first
    deployment step after the provisioner (so the execution says where it deployed);
    else None."""
    ids = spec.get(IDS_KEY)
    if not ids or step.id in ids or step.id == spec.get(MARK) or RESOLVED_KEY in spec:
        return None
    try:
        return {**spec, RESOLVED_KEY: infrastructure(spec, earlier)}
    except ProvisionerError:
        return None  # the step fails with that error; nothing was resolved


def _context(execution_id: str, spec: dict[str, Any], earlier: Earlier,
             infra: dict[str, Any], provided: dict[str, Any] | None) -> dict[str, Any]:
    artifact = context_artifact(spec, earlier.outputs)
    return {
        "artifact": artifact,
        "primary": {"artifact": artifact},
        "serviceVariables": spec.get("serviceVariables") or {},
        "env": spec.get("env") or {},
        "infra": {k: infra.get(k) for k in ("region", "cluster")},
        "provisioner": provided or {},
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
    where = f"{'steps' if phase == 'steps' else 'rollbackSteps'}[{step.id}].params"
    params = dict(step.params)
    error = skipped = None
    provided = provisioned(spec, earlier)
    try:
        infra = resolve_infrastructure(spec.get("infrastructure") or {}, provided)
    except ProvisionerError as exc:
        infra, error = {}, str(exc)
    try:
        params = Resolver(outputs=earlier.outputs, infra=infra,
                          provisioned=provided).resolve(params, where)
    except MissingOutput as exc:
        skipped = skip_reason(exc, earlier) if phase == "rollback" else None
        error = error or (None if skipped else str(exc))
    except (ExpressionError, ProvisionerError) as exc:
        error = error or str(exc)
    selectors = step.selectors if step.selectors is not None else spec.get("selectors") or []
    context = _context(execution_id, spec, earlier, infra, provided)
    # The infrastructure is offered, not imposed: the delegate fills these into the params
    # of a step type that declares them (a CloudFormation or shell step takes no cluster).
    context[PARAM_DEFAULTS] = {k: infra[k] for k in _INFRA_PARAMS if infra.get(k) is not None}
    if spec.get("manifests"):  # the effective manifests of an execution by reference
        context[PARAM_DEFAULTS]["manifests"] = spec["manifests"]
    task = NewTask(type=step.type, selectors=selectors, params=params, secrets=dict(secrets),
                   context=context,
                   timeout=step.timeout or 3600.0, account_id=account_id,
                   execution_id=execution_id, step_id=step.id)
    return StepPlan(task=task, error=error, skipped=skipped)
