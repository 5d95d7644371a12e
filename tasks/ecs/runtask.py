"""``ecs.run_task``: run one-off tasks (a migration, a batch job) and judge how they ended.

The step's own task definition is registered and run with the run task request
definition (launch type, network, count, overrides, placement, capacity providers); a
``taskDefinition`` named in that request is ignored with a warning. By default the step
waits until every task has STOPPED and succeeds only if every essential container exited
0; ``waitUntil: running`` waits for RUNNING instead; ``skipSteadyStateCheck`` returns
right after RunTask with the task ARNs.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass
from functools import partial
from typing import Any, Literal

from botocore.exceptions import BotoCoreError, ClientError
from pydantic import Field

from agent.context import (
    TaskContext,
    TaskFailed,
    TaskRegistry,
    TaskTimedOut,
    TaskType,
    UnitLog,
)
from tasks.aws.ports import EcsClient
from tasks.ecs.errors import aws_errors, unthrottled
from tasks.ecs.params import EcsTarget
from tasks.ecs.step import EcsStep, ecs_step
from tasks.ecs.taskdef import container_definitions, register_task_definition
from tasks.ecs.watcher import describe_stopped_task, human_duration
from tasks.manifests import Manifests, ManifestSpecs

DESCRIBE_TASKS_LIMIT = 100


class RunTaskParams(EcsTarget):
    manifests: ManifestSpecs
    skip_steady_state_check: bool = Field(
        default=False, alias="skipSteadyStateCheck",
        description="return right after RunTask with the task ARNs")
    wait_until: Literal["stopped", "running"] = Field(
        default="stopped", alias="waitUntil",
        description="stopped: wait for the tasks to finish and check their exit codes; "
                    "running: succeed once every task is RUNNING")


# --------------------------------------------------------------------------- verdicts


@dataclass(frozen=True)
class TaskOutcome:
    ok: bool
    lines: tuple[str, ...]  # why, for the log and the error


def judge_stopped(task: Mapping[str, Any], essential: Mapping[str, bool]) -> TaskOutcome:
    """A stopped one-off task succeeded when every essential container exited 0."""
    bad = []
    for container in task.get("containers") or []:
        name = str(container.get("name", "?"))
        if not essential.get(name, True):
            continue
        if container.get("exitCode") != 0:
            bad.append(name)
    lines = tuple(describe_stopped_task(dict(task)))
    return TaskOutcome(ok=not bad and bool(task.get("containers")), lines=lines)


def task_summary(task: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "taskArn": task.get("taskArn"),
        "lastStatus": task.get("lastStatus"),
        "stopCode": task.get("stopCode"),
        "stoppedReason": task.get("stoppedReason"),
        "containers": [{"name": c.get("name"), "exitCode": c.get("exitCode"),
                        "reason": c.get("reason")} for c in task.get("containers") or []],
    }


def short_id(arn: str) -> str:
    return arn.rsplit("/", 1)[-1]


# --------------------------------------------------------------------------- handler


async def run_task(ctx: TaskContext[RunTaskParams]) -> dict[str, Any]:
    params = ctx.params
    async with ecs_step(ctx, taskArns=[]) as step:
        async with ctx.log.unit("Fetch Manifests") as log:
            requests = await _fetch(step, log)
        ecs = await step.ecs()
        async with ctx.log.unit("Run Task") as log:
            arns = await _run(ctx, ecs, log, params, requests)
        if params.skip_steady_state_check:
            ctx.log.skip("Wait for Tasks", "Skip steady-state check is set: the tasks "
                         "were started and are not watched")
            return dict(ctx.output)
        async with ctx.log.unit("Wait for Tasks") as log:
            essential = {str(c.get("name")): bool(c.get("essential", True))
                         for c in await container_definitions(ecs, requests)}
            await _wait(ctx, ecs, log, params, arns, essential)
    return dict(ctx.output)


async def _fetch(step: EcsStep[RunTaskParams], log: UnitLog) -> Manifests:
    manifests = await step.fetch_manifests(log, step.params.manifests, "a run task step",
                                           needs_service=False)
    if manifests.run_task_request is None:
        raise TaskFailed("manifests.runTaskRequest is required for a run task step: give the "
                         "RunTask request (launchType, networkConfiguration, count ...)")
    return manifests


async def _run(ctx: TaskContext, ecs: EcsClient, log: UnitLog, params: RunTaskParams,
               requests: Manifests) -> list[str]:
    out = ctx.output
    arn = await register_task_definition(ecs, log, requests)
    out["taskDefinitionArn"] = arn
    log.info("")
    request = dict(requests.run_task_request or {})
    request.update(cluster=params.cluster, taskDefinition=arn)
    count = int(request.get("count") or 1)
    log.info(f"Triggering {count} tasks with task definition {short_id(arn)}")
    with aws_errors(f"RunTask with task definition {arn}"):
        answer = await unthrottled(lambda: ecs.run_task(**request))
    tasks: list[dict[str, Any]] = answer.get("tasks") or []
    failures: list[dict[str, Any]] = answer.get("failures") or []
    log.info(f"{len(tasks)} Tasks were triggered successfully and {len(failures)} failures "
             "were received.")
    arns = [str(t["taskArn"]) for t in tasks]
    out["taskArns"] = arns
    for task_arn in arns:
        log.info(f"Task => {task_arn} succeeded")
    for failure in failures:
        log.error(f"{failure.get('arn', '?')} failed with reason => "
                  f"{failure.get('reason', '?')}\nDetails: {failure.get('detail', '-')}")
    if failures:
        out["failures"] = failures
        reasons = "; ".join(f"{f.get('arn', '?')}: {f.get('reason', '?')}"
                            + (f" ({f['detail']})" if f.get("detail") else "")
                            for f in failures)
        raise TaskFailed(f"RunTask could not start {len(failures)} of {count} tasks: "
                         f"{reasons}. Check the cluster's capacity and the request's "
                         "placement, then run the step again.")
    if not arns:
        raise TaskFailed("RunTask started no task and reported no failure; check the "
                         "request's count")
    return arns


async def _describe(ecs: EcsClient, cluster: str, arns: list[str]) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    for i in range(0, len(arns), DESCRIBE_TASKS_LIMIT):
        batch = arns[i:i + DESCRIBE_TASKS_LIMIT]
        with aws_errors(f"DescribeTasks in cluster {cluster}"):
            answer = await unthrottled(partial(ecs.describe_tasks, cluster=cluster,
                                               tasks=batch))
        for task in answer.get("tasks") or []:
            found[str(task["taskArn"])] = task
    return found


async def _wait(ctx: TaskContext, ecs: EcsClient, log: UnitLog, params: RunTaskParams,
                arns: list[str], essential: Mapping[str, bool]) -> None:
    goal = "RUNNING" if params.wait_until == "running" else "STOPPED"
    log.info(f"Waiting for {len(arns)} task(s) to reach {goal} state")
    shown: dict[str, str] = {}
    tasks: dict[str, dict[str, Any]] = {}
    try:
        async with asyncio.timeout(params.steady_state_timeout):
            while True:
                tasks = await _describe(ecs, params.cluster, arns)
                missing = [a for a in arns if a not in tasks]
                if missing:
                    raise TaskFailed(f"ECS no longer knows task(s) "
                                     f"{', '.join(short_id(a) for a in missing)} (MISSING); "
                                     "their outcome cannot be checked")
                for task_arn in arns:
                    status = str(tasks[task_arn].get("lastStatus"))
                    if shown.get(task_arn) != status:
                        shown[task_arn] = status
                        log.info(f"Task {short_id(task_arn)} is {status}")
                ctx.output["tasks"] = [task_summary(tasks[a]) for a in arns]
                statuses = {str(tasks[a].get("lastStatus")) for a in arns}
                if statuses == {"STOPPED"} or (goal == "RUNNING" and "STOPPED" in statuses):
                    break
                if goal == "RUNNING" and statuses == {"RUNNING"}:
                    log.info("")
                    log.info(f"All {len(arns)} task(s) are RUNNING.")
                    return
                await asyncio.sleep(params.poll_interval)
    except TimeoutError:
        counts = ", ".join(f"{short_id(a)} {shown.get(a, '?')}" for a in arns)
        await _stop_tasks(ecs, log, params.cluster, arns, shown,
                          "ecs-delegate: step timed out (steadyStateTimeout)")
        raise TaskTimedOut(f"The tasks did not reach {goal} within "
                         f"{human_duration(params.steady_state_timeout)} ({counts}); raise "
                         "steadyStateTimeout if the job needs longer") from None
    except asyncio.CancelledError:
        # Aborted, past the task's timeout, or the delegate is stopping: nobody will
        # watch these tasks any more, so they do not outlive the step.
        await _stop_tasks(ecs, log, params.cluster, arns, shown,
                          "ecs-delegate: step aborted")
        raise
    _verdict(log, [tasks[a] for a in arns], essential, expected_stop=goal == "STOPPED")


STOP_TIMEOUT = 15.0


async def _stop_tasks(ecs: EcsClient, log: UnitLog, cluster: str, arns: list[str],
                      shown: Mapping[str, str], reason: str) -> None:
    running = [a for a in arns if shown.get(a) != "STOPPED"]
    if not running:
        return
    log.warn(f"Stopping {len(running)} task(s) this step started: {reason}")
    try:
        async with asyncio.timeout(STOP_TIMEOUT):
            for task_arn in running:
                await ecs.stop_task(cluster=cluster, task=task_arn, reason=reason)
                log.warn(f"Stopped task {short_id(task_arn)}")
    except (TimeoutError, BotoCoreError, ClientError) as exc:
        log.error(f"Could not stop every task ({exc}); stop them with "
                  f"'aws ecs stop-task --cluster {cluster} --task ARN'")


def _verdict(log: UnitLog, tasks: list[dict[str, Any]], essential: Mapping[str, bool], *,
             expected_stop: bool) -> None:
    outcomes = [(t, judge_stopped(t, essential)) for t in tasks
                if t.get("lastStatus") == "STOPPED"]
    failed = [(t, o) for t, o in outcomes if not o.ok or not expected_stop]
    log.info("")
    for _task, outcome in outcomes:
        for line in outcome.lines:
            (log.info if outcome.ok and expected_stop else log.error)(line)
    if not failed:
        log.info(f"All {len(tasks)} task(s) finished successfully: every essential "
                 "container exited 0.")
        return
    details = "; ".join(" ".join(line.strip() for line in o.lines) for _t, o in failed)
    if expected_stop:
        raise TaskFailed(f"{len(failed)} of {len(tasks)} task(s) failed: {details}")
    raise TaskFailed(f"{len(failed)} task(s) stopped before all were RUNNING: {details}")


def register(registry: TaskRegistry) -> None:
    registry.register(TaskType(
        name="ecs.run_task",
        handler=run_task,
        summary="Register the task definition and run it with the run task request; wait "
                "until the tasks stop (every essential container must exit 0) or run.",
        params_model=RunTaskParams,
        outputs={
            "taskDefinitionArn": "ARN of the task definition that ran",
            "taskArns": "ARNs of the tasks RunTask started",
            "tasks": "each task's taskArn, lastStatus, stopCode, stoppedReason and "
                     "containers (name, exitCode, reason), as last seen",
            "failures": "RunTask's failures[] (arn, reason, detail), when there were any",
            "cluster": "cluster", "region": "AWS region",
        },
        units=("Fetch Manifests", "Run Task", "Wait for Tasks"),
    ))
