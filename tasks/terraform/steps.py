"""The Terraform and Terragrunt steps: plan, apply (as given, or a plan step's saved
plan), destroy, and rollback (the configuration and variables of the apply before this
execution's, applied again — or, when there was none, a destroy with the configuration
this execution applied).

The manager keeps, under the provisioner identifier and workspace, each successful
apply's configuration and variables (sealed), each apply's attempt, and each plan's
plan file (``manager.tf_state``)."""

from __future__ import annotations

import base64
from typing import Any, TypeVar

from agent.context import TaskContext, TaskFailed, UnitLog
from tasks.manifests.errors import ManifestError
from tasks.manifests.render import Variables, render
from tasks.terraform.params import (
    ApplyParams,
    DestroyParams,
    PlanParams,
    RollbackParams,
    TerraformParams,
)
from tasks.terraform.records import Records, RunSpec
from tasks.terraform.runner import Session, session

_PLAN_FILE = "delegate.tfplan"
# The Terragrunt steps' params extend these: the same handlers serve both.
Plan = TypeVar("Plan", bound=PlanParams)
Apply = TypeVar("Apply", bound=ApplyParams)
Destroy = TypeVar("Destroy", bound=DestroyParams)
Rollback = TypeVar("Rollback", bound=RollbackParams)


def _render(value: Any, params: TerraformParams, ctx: TaskContext, where: str) -> Any:
    variables = Variables(context=ctx.context, secrets=ctx.secrets, region=params.region,
                          on_secret=ctx.add_secret)
    try:
        return render(value, variables, file=where)
    except ManifestError as exc:
        raise TaskFailed(str(exc)) from None


def spec_of_environment(params: TerraformParams, ctx: TaskContext) -> dict[str, str]:
    return {k: str(v) for k, v in _render(params.environment_variables, params, ctx,
                                          "environmentVariables").items()}


def spec_of(params: TerraformParams, ctx: TaskContext) -> RunSpec:
    """What this step runs with, expressions and secrets resolved."""
    assert params.configuration is not None
    return RunSpec(
        source=params.configuration.model_dump(by_alias=True, exclude_none=True),
        variables=_render(params.variables, params, ctx, "variables"),
        var_files=list(params.var_files), targets=list(params.targets),
        environment=spec_of_environment(params, ctx),
        backend_config=_render(params.backend_config, params, ctx, "backendConfig"))


def _records(ctx: TaskContext, params: TerraformParams) -> Records:
    return Records(ctx, params.provisioner_identifier, params.workspace)


async def _keep_applied(s: Session, records: Records, source: dict[str, Any]) -> None:
    """Record the apply that just succeeded, with the configuration as it was fetched
    (a Git commit, the file store's contents), for a later rollback."""
    spec = RunSpec.from_json({**s.spec.to_json(), "source": source})
    await records.add("apply", {"run": spec.to_json()})


async def plan(ctx: TaskContext[Plan], tool: str = "terraform") -> dict[str, Any]:
    params = ctx.params
    records = _records(ctx, params)
    async with ctx.log.unit("Plan") as log, \
            session(ctx, params, tool, log, spec_of(params, ctx)) as s:
        assert s.opts is not None
        code, _ = await s.run(s.inv.plan(s.opts, str(s.workdir / _PLAN_FILE),
                                         destroy=params.destroy), ok=(0, 2))
        if not s.inv.saves_plans:
            log.info("run-all plans are not saved: apply with the configuration")
            return ctx.output
        saved = (s.workdir / _PLAN_FILE).read_bytes()
        plan_id = await records.add("plan", {
            "run": RunSpec.from_json({**s.spec.to_json(), "source": s.source or {}}).to_json(),
            "plan": base64.b64encode(saved).decode(), "destroy": params.destroy})
        ctx.output.update(planId=str(plan_id), hasChanges=code == 2)
        log.info(f"Plan {plan_id} saved at the manager"
                 + ("" if code == 2 else " (no changes)"))
    return ctx.output


def _plan_id(params: ApplyParams, ctx: TaskContext) -> int:
    if params.plan_id is not None:
        raw: Any = params.plan_id
    else:
        steps = (ctx.context.get("execution") or {}).get("steps") or {}
        raw = ((steps.get(params.plan_step) or {}).get("output") or {}).get("planId")
        if raw is None:
            raise TaskFailed(f"planStep {params.plan_step!r}: no earlier step of this "
                             "execution with that id left a planId; name a terraform.plan "
                             "step that ran before this one")
    try:
        return int(raw)
    except (TypeError, ValueError):
        raise TaskFailed(f"planId {raw!r} is not a plan id (a plan step's planId)") from None


async def apply(ctx: TaskContext[Apply], tool: str = "terraform") -> dict[str, Any]:
    params = ctx.params
    records = _records(ctx, params)
    saved: bytes | None = None
    if params.configuration is None:
        found = await records.get("plan", id=_plan_id(params, ctx))
        if found is None:
            raise TaskFailed(f"no saved plan {_plan_id(params, ctx)} for provisioner "
                             f"{params.provisioner_identifier!r} workspace "
                             f"{params.workspace!r}; check planStep and the identifiers")
        planned = RunSpec.from_json(found["body"]["run"])
        # The plan fixes the configuration and variables; the environment is this step's
        # too (credentials that changed since the plan, say).
        spec = RunSpec.from_json({**planned.to_json(), "environment": {
            **planned.environment, **spec_of_environment(params, ctx)}})
        saved = base64.b64decode(found["body"]["plan"])
    else:
        spec = spec_of(params, ctx)
    previous = await records.get("apply")
    attempt = await records.add("attempt", {"run": spec.to_json()})
    # Before anything runs: a failed or aborted apply is rolled back with it too.
    ctx.output["rollbackData"] = {
        "provisionerIdentifier": params.provisioner_identifier,
        "workspace": params.workspace, "attempt": attempt,
        "previousApply": previous["id"] if previous else None}
    async with ctx.log.unit("Apply") as log, session(ctx, params, tool, log, spec) as s:
        assert s.opts is not None
        plan_file = None
        if saved is not None:
            plan_file = str(s.workdir / _PLAN_FILE)
            (s.workdir / _PLAN_FILE).write_bytes(saved)
        await s.run(s.inv.apply(s.opts, plan_file))
        ctx.output.update(await s.outputs())
        await _keep_applied(s, records, s.source or {})
    return ctx.output


async def destroy(ctx: TaskContext[Destroy], tool: str = "terraform") -> dict[str, Any]:
    params = ctx.params
    async with ctx.log.unit("Destroy") as log, \
            session(ctx, params, tool, log, spec_of(params, ctx)) as s:
        assert s.opts is not None
        await s.run(s.inv.destroy(s.opts))
        log.info("Destroyed")
    return ctx.output


async def _rollback_target(params: RollbackParams, records: Records,
                           log: UnitLog) -> tuple[RunSpec, bool]:
    """(what to run, whether to re-apply it — else destroy with it)."""
    data = params.rollback_data
    if data is None:
        latest = await records.get("apply")
        if latest is None:
            raise TaskFailed(f"no successful apply of {records.where} to apply again, and "
                             "no rollbackData naming one; nothing to roll back to")
        log.info(f"Applying again the last successful apply (task {latest['taskId']}'s)")
        return RunSpec.from_json(latest["body"]["run"]), True
    if data.get("previousApply") is not None:
        found = await records.get("apply", id=int(data["previousApply"]))
        if found is None:
            raise TaskFailed(f"the apply record {data['previousApply']} of {records.where} "
                             "is gone; nothing to roll back to")
        log.info(f"Applying again the configuration and variables of task "
                 f"{found['taskId']}'s apply, the last successful one before this "
                 "execution's")
        return RunSpec.from_json(found["body"]["run"]), True
    attempt = await records.get("attempt", id=int(data["attempt"]))
    if attempt is None:
        raise TaskFailed(f"the attempt record {data['attempt']} of {records.where} is gone")
    log.info("There was no successful apply before this execution's: destroying what "
             "it applied")
    return RunSpec.from_json(attempt["body"]["run"]), False


async def rollback(ctx: TaskContext[Rollback],
                   tool: str = "terraform") -> dict[str, Any]:
    params = ctx.params
    data = params.rollback_data or {}
    for name, mine in (("provisionerIdentifier", params.provisioner_identifier),
                       ("workspace", params.workspace)):
        if data.get(name, mine) != mine:
            raise TaskFailed(f"rollbackData is for {name} {data[name]!r}, this step for "
                             f"{mine!r}; give the apply step's own identifiers")
    records = _records(ctx, params)
    async with ctx.log.unit("Rollback") as log:
        spec, reapply = await _rollback_target(params, records, log)
        async with session(ctx, params, tool, log, spec) as s:
            assert s.opts is not None
            if reapply:
                await s.run(s.inv.apply(s.opts))
                ctx.output.update(await s.outputs())
                await _keep_applied(s, records, s.source or {})
            else:
                await s.run(s.inv.destroy(s.opts))
                log.info("Destroyed")
    return ctx.output
