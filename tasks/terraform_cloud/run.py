"""``terraform_cloud.run``: queue a run in a Terraform Cloud / Enterprise workspace, stream
its plan log, wait for its policy checks, apply it (or discard it), stream the apply log,
and hand back the workspace's outputs.

The run is the workspace's: its configuration, variables and state live in Terraform
Cloud, and the delegate only drives the API. So an abort cancels or discards the run it
queued (a run left planned would block the workspace's queue), and a failed step
discards it too unless ``discardOnFailure: false``."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Awaitable, Callable
from typing import Any

from agent.context import TaskContext, TaskFailed, UnitLog
from tasks.manifests.errors import ManifestError
from tasks.manifests.render import Variables, render
from tasks.terraform_cloud.api import TerraformCloudApi, TerraformCloudError
from tasks.terraform_cloud.logs import LogFollower
from tasks.terraform_cloud.params import TerraformCloudRunParams

# Statuses of a run that is still planning (or waiting to).
PLANNING = frozenset({"pending", "fetching", "fetching_completed", "pre_plan_running",
                      "pre_plan_completed", "queuing", "plan_queued", "planning"})
# Still checking what the plan would do.
CHECKING = frozenset({"planned", "cost_estimating", "cost_estimated", "policy_checking",
                      "post_plan_running", "post_plan_completed"})
APPLYING = frozenset({"confirmed", "apply_queued", "applying", "queuing_apply",
                      "pre_apply_running", "pre_apply_completed"})
FAILED_END = frozenset({"errored", "canceled", "force_canceled", "discarded"})


class Run:
    """The run's latest document, with the few fields the step reads."""

    def __init__(self, doc: dict[str, Any]) -> None:
        data = doc.get("data") or {}
        self.id: str = data.get("id", "")
        self.attributes: dict[str, Any] = data.get("attributes") or {}
        self.status: str = self.attributes.get("status", "")

    def can(self, action: str) -> bool:
        return bool((self.attributes.get("actions") or {}).get(action))


def _render(value: Any, ctx: TaskContext[Any], where: str) -> Any:
    variables = Variables(context=ctx.context, secrets=ctx.secrets, on_secret=ctx.add_secret)
    try:
        return render(value, variables, file=where)
    except ManifestError as exc:
        raise TaskFailed(str(exc)) from None


async def _workspace(api: TerraformCloudApi, p: TerraformCloudRunParams) -> dict[str, Any]:
    doc = await api.call("GET", f"/organizations/{p.organization}/workspaces/{p.workspace}",
                         what=f"reading workspace {p.organization}/{p.workspace}")
    return doc.get("data") or {}


def _run_document(p: TerraformCloudRunParams, workspace_id: str,
                  variables: dict[str, str]) -> dict[str, Any]:
    attributes: dict[str, Any] = {
        "message": p.message,
        "is-destroy": p.run_type == "planAndDestroy",
        "refresh-only": p.run_type == "refreshState",
        "plan-only": p.run_type == "plan",
        # The step applies after it has seen the checks, whatever the workspace says.
        "auto-apply": False,
        # Run variables are HCL: a JSON string literal is a valid HCL string.
        "variables": [{"key": k, "value": json.dumps(v)} for k, v in variables.items()],
    }
    if p.targets:
        attributes["target-addrs"] = p.targets
    return {"data": {"type": "runs", "attributes": attributes, "relationships": {
        "workspace": {"data": {"type": "workspaces", "id": workspace_id}}}}}


def planning(run: Run) -> bool:
    return run.status in PLANNING


def checking(run: Run) -> bool:
    """Still checking: a run that waits for confirmation (``planned`` with no checks
    left, ``policy_checked``, ...) says so with its ``is-confirmable`` action."""
    return run.status in CHECKING and not run.can("is-confirmable")


def applying(run: Run) -> bool:
    return run.status in APPLYING or checking(run)


async def _wait(api: TerraformCloudApi, run_id: str, busy: Callable[[Run], bool],
                interval: float, on_poll: Callable[[Run], Awaitable[None]]) -> Run:
    """Poll the run while ``busy(run)``; ``on_poll`` (which follows the log) is awaited
    after every read."""
    while True:
        run = Run(await api.call("GET", f"/runs/{run_id}", what=f"reading run {run_id}"))
        await on_poll(run)
        if not busy(run):
            return run
        await asyncio.sleep(interval)


def _plan_summary(plan: dict[str, Any]) -> str:
    a = (plan.get("data") or {}).get("attributes") or {}
    return (f"Plan: {a.get('resource-additions', 0)} to add, "
            f"{a.get('resource-changes', 0)} to change, "
            f"{a.get('resource-destructions', 0)} to destroy.")


async def _plan(api: TerraformCloudApi, ctx: TaskContext[TerraformCloudRunParams],
                log: UnitLog, run_id: str) -> Run:
    p = ctx.params
    follower = LogFollower(api, f"/runs/{run_id}/plan", log, "plan")
    run = await _wait(api, run_id, planning, p.poll_interval, lambda _r: follower.poll())
    await follower.poll(final=True)
    if run.status in FAILED_END:
        raise TaskFailed(f"The plan ended {run.status}." + follower.tail_text())
    plan = await api.call("GET", f"/runs/{run_id}/plan", what="reading the plan")
    ctx.output["hasChanges"] = bool(run.attributes.get("has-changes", True))
    log.info(_plan_summary(plan))
    return run


async def _policy_checks(api: TerraformCloudApi, p: TerraformCloudRunParams,
                         log: UnitLog, run: Run) -> Run:
    """Print each policy check's result; override soft failures when allowed; fail on a
    hard failure, or a soft one that is not overridden."""
    doc = await api.call("GET", f"/runs/{run.id}/policy-checks", what="reading policy checks")
    checks = doc.get("data") or []
    if not checks:
        log.info("The workspace has no policy checks.")
    for check in checks:
        a = check.get("attributes") or {}
        result = a.get("result") or {}
        log.info(f"Policy check {check.get('id')}: {a.get('status')} "
                 f"({result.get('passed', 0)} passed, {result.get('hard-failed', 0)} hard "
                 f"failed, {result.get('soft-failed', 0)} soft failed, "
                 f"{result.get('advisory-failed', 0)} advisory)")
    if run.status == "policy_soft_failed":
        if not p.override_policies:
            raise TaskFailed("A policy check soft-failed. Fix the configuration, or set "
                             "overridePolicies: true to override it (the token needs the "
                             "right to).")
        for check in checks:
            if (check.get("attributes") or {}).get("status") == "soft_failed":
                await api.call("POST", f"/policy-checks/{check['id']}/actions/override",
                               what="overriding a soft-failed policy check")
                log.warn(f"Overrode soft-failed policy check {check['id']}")
        run = await _wait(api, run.id, lambda r: checking(r) or r.status ==
                          "policy_soft_failed", p.poll_interval, _ignore)
    if run.status in FAILED_END:
        raise TaskFailed(f"The run ended {run.status} in its checks (a hard-failed policy "
                         "check, or a failed cost estimate or run task).")
    return run


async def _ignore(_run: Run) -> None:
    return None


async def _apply(api: TerraformCloudApi, ctx: TaskContext[TerraformCloudRunParams],
                 log: UnitLog, run: Run) -> Run:
    p = ctx.params
    if run.can("is-confirmable"):
        await api.call("POST", f"/runs/{run.id}/actions/apply",
                       body={"comment": f"Applied by ecs-delegate (task {ctx.task_id})"},
                       what="applying the run")
        log.info("Apply confirmed.")
    follower = LogFollower(api, f"/runs/{run.id}/apply", log, "apply")
    run = await _wait(api, run.id, applying, p.poll_interval, lambda _r: follower.poll())
    await follower.poll(final=True)
    if run.status != "applied":
        raise TaskFailed(f"The apply ended {run.status}." + follower.tail_text())
    return run


async def _outputs(api: TerraformCloudApi, ctx: TaskContext[Any], log: UnitLog,
                   workspace_id: str) -> None:
    """The workspace's current state outputs become the step's outputs; a sensitive one is
    masked in every log from now on and named in ``sensitiveOutputs``."""
    doc = await api.call("GET", f"/workspaces/{workspace_id}/current-state-version-outputs",
                         what="reading the workspace's outputs")
    sensitive: list[str] = []
    names: list[str] = []
    for item in doc.get("data") or []:
        a = item.get("attributes") or {}
        name, value = a.get("name"), a.get("value")
        if not isinstance(name, str):
            continue
        if a.get("sensitive"):
            sensitive.append(name)
            if value is None:  # listed redacted: the output's own document holds it
                one = await api.call("GET", f"/state-version-outputs/{item.get('id')}",
                                     what=f"reading sensitive output {name}")
                value = ((one.get("data") or {}).get("attributes") or {}).get("value")
            text = value if isinstance(value, str) else json.dumps(value)
            ctx.add_secret(text)
        ctx.output[name] = value
        names.append(name)
    ctx.output["sensitiveOutputs"] = sorted(sensitive)
    log.info("Outputs: " + (", ".join(sorted(names)) or "none")
             + (f" (sensitive, masked: {', '.join(sorted(sensitive))})" if sensitive else ""))


async def _let_go(api: TerraformCloudApi, run_id: str, log: UnitLog | None) -> None:
    """Leave the workspace's queue free: discard a run waiting for a decision, cancel one
    that is planning or applying. Best effort, bounded: an abort must not hang on it."""
    try:
        run = Run(await api.call("GET", f"/runs/{run_id}", what="reading the run"))
        action = ("discard" if run.can("is-discardable") else
                  "cancel" if run.can("is-cancelable") else None)
        if action:
            await api.call("POST", f"/runs/{run_id}/actions/{action}",
                           body={"comment": "ecs-delegate step ended"},
                           what=f"{action}ing the run")
            if log is not None:
                log.warn(f"Run {run_id}: {action} requested")
    except TerraformCloudError as exc:
        if log is not None:
            log.warn(f"Could not free the workspace: {exc}")


async def _queue(api: TerraformCloudApi, ctx: TaskContext[TerraformCloudRunParams],
                 log: UnitLog, variables: dict[str, str]) -> tuple[str, str]:
    """Queue the run; returns (workspace id, run id)."""
    p = ctx.params
    ws = await _workspace(api, p)
    ws_id = ws.get("id", "")
    version = (ws.get("attributes") or {}).get("terraform-version", "?")
    log.info(f"Workspace {p.organization}/{p.workspace} ({ws_id}), Terraform {version}")
    doc = await api.call("POST", "/runs", body=_run_document(p, ws_id, variables),
                         what=f"queueing a run in {p.organization}/{p.workspace}")
    run_id = (doc.get("data") or {}).get("id", "")
    ctx.output.update(runId=run_id, workspaceId=ws_id,
                      runUrl=f"{p.address}/app/{p.organization}/workspaces/{p.workspace}"
                             f"/runs/{run_id}")
    log.info(f"Run {run_id} queued ({p.run_type}): {ctx.output['runUrl']}")
    return ws_id, run_id


async def _drive(api: TerraformCloudApi, ctx: TaskContext[TerraformCloudRunParams],
                 variables: dict[str, str], started: list[str]) -> None:
    p = ctx.params
    async with ctx.log.unit("Plan") as log:
        ws_id, run_id = await _queue(api, ctx, log, variables)
        started.append(run_id)
        run = await _plan(api, ctx, log, run_id)
    async with ctx.log.unit("Policy Checks") as log:
        run = await _wait(api, run_id, checking, p.poll_interval, _ignore)
        run = await _policy_checks(api, p, log, run)
    ctx.output["runStatus"] = run.status
    if p.run_type == "plan" or run.status == "planned_and_finished":
        why = ("runType plan: a speculative plan, nothing is applied"
               if p.run_type == "plan" else "The plan has no changes: nothing to apply")
        ctx.log.skip("Apply", why)
        return
    async with ctx.log.unit("Apply") as log:
        run = await _apply(api, ctx, log, run)
        ctx.output["runStatus"] = run.status
        await _outputs(api, ctx, log, ws_id)


async def terraform_cloud_run(ctx: TaskContext[TerraformCloudRunParams]) -> dict[str, Any]:
    p = ctx.params
    token = str(_render(p.api_token, ctx, "apiToken"))
    ctx.add_secret(token)
    variables = {k: str(v) for k, v in _render(p.variables, ctx, "variables").items()}
    started: list[str] = []
    async with TerraformCloudApi(p.address, token) as api:
        try:
            await _drive(api, ctx, variables, started)
        except asyncio.CancelledError:
            if started:
                with contextlib.suppress(asyncio.CancelledError, TimeoutError):
                    await asyncio.wait_for(_let_go(api, started[0], None), 10)
            raise
        except TerraformCloudError as exc:
            if started and p.discard_on_failure:
                await _let_go(api, started[0], None)
            raise TaskFailed(str(exc)) from None
        except TaskFailed:
            if started and p.discard_on_failure:
                await _let_go(api, started[0], None)
            raise
    return ctx.output
