"""ecs.run_task against the sandbox: one-off tasks exit with the code their environment
asks for (SANDBOX_EXIT_CODE / SANDBOX_EXIT_REASON / SANDBOX_RUN_SECONDS)."""

from __future__ import annotations

import time
from typing import Any

import pytest

from agent.context import TaskFailed
from tasks.ecs.runtask import RunTaskParams, run_task
from testkit.sandbox_fixture import Aws
from wire.protocol import UnitStatus

from .support import Recorded, make_ctx


@pytest.fixture(autouse=True)
def point_at_sandbox(aws: Aws, monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in aws.environment().items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "2")


def params(aws: Aws, *, env: dict[str, str] | None = None, count: int = 1,
           overrides: dict[str, Any] | None = None, **extra: Any) -> RunTaskParams:
    request: dict[str, Any] = {"launchType": "FARGATE", "count": count,
                               "networkConfiguration": aws.network_configuration,
                               "taskDefinition": "someone-elses:1"}
    if overrides:
        request["overrides"] = overrides
    container: dict[str, Any] = {"name": "migrate", "image": "example.com/migrate:7",
                                 "essential": True}
    container["environment"] = [{"name": k, "value": v}
                                for k, v in {"SANDBOX_RUN_SECONDS": "0.2", **(env or {})}.items()]
    return RunTaskParams.model_validate({
        "region": aws.region, "cluster": aws.cluster, "pollInterval": "0.05s",
        "steadyStateTimeout": "20s",
        "manifests": {
            "taskDefinition": {"store": "inline", "content": {
                "family": "migrate", "requiresCompatibilities": ["FARGATE"],
                "networkMode": "awsvpc", "cpu": "256", "memory": "512",
                "containerDefinitions": [container]}},
            "runTaskRequest": {"store": "inline", "content": request},
        }, **extra})


async def run(p: RunTaskParams) -> tuple[dict[str, Any], Recorded]:
    ctx, rec = make_ctx("ecs.run_task", p)
    return await run_task(ctx), rec


async def test_exit_0_succeeds(aws: Aws) -> None:
    out, rec = await run(params(aws, count=2))
    assert len(out["taskArns"]) == 2
    assert all(t["lastStatus"] == "STOPPED" for t in out["tasks"])
    assert all(c["exitCode"] == 0 for t in out["tasks"] for c in t["containers"])
    fetch = rec.text("Fetch Manifests")
    assert "taskDefinition in the run task request is ignored" in fetch
    text = rec.text("Run Task")
    assert "Triggering 2 tasks with task definition migrate:1" in text
    assert "2 Tasks were triggered successfully and 0 failures were received." in text
    assert "every essential container exited 0" in rec.text("Wait for Tasks")
    described = aws.client("ecs").describe_tasks(cluster=aws.cluster, tasks=out["taskArns"])
    assert {t["taskDefinitionArn"] for t in described["tasks"]} == {out["taskDefinitionArn"]}


async def test_exit_1_fails_with_the_containers_reason(aws: Aws) -> None:
    ctx, rec = make_ctx("ecs.run_task", params(aws, overrides={"containerOverrides": [
        {"name": "migrate", "environment": [
            {"name": "SANDBOX_EXIT_CODE", "value": "1"},
            {"name": "SANDBOX_EXIT_REASON", "value": "relation users already exists"}]}]}))
    with pytest.raises(TaskFailed) as failed:
        await run_task(ctx)
    message = str(failed.value)
    assert "1 of 1 task(s) failed" in message
    assert "Essential container in task exited" in message
    assert "exit code 1" in message and "relation users already exists" in message
    assert ctx.output["tasks"][0]["containers"][0]["exitCode"] == 1  # kept for the result
    assert rec.unit_status()["Wait for Tasks"] is UnitStatus.FAILURE


async def test_skip_steady_state_returns_at_once(aws: Aws) -> None:
    started = time.monotonic()
    out, rec = await run(params(aws, env={"SANDBOX_RUN_SECONDS": "30"},
                                skipSteadyStateCheck=True))
    assert time.monotonic() - started < 10
    assert len(out["taskArns"]) == 1
    assert rec.unit_status()["Wait for Tasks"] is UnitStatus.SKIPPED
    task = aws.client("ecs").describe_tasks(cluster=aws.cluster,
                                            tasks=out["taskArns"])["tasks"][0]
    assert task["lastStatus"] != "STOPPED"


async def test_wait_until_running(aws: Aws) -> None:
    out, rec = await run(params(aws, env={"SANDBOX_RUN_SECONDS": "30"}, waitUntil="running"))
    assert out["tasks"][0]["lastStatus"] == "RUNNING"
    assert "All 1 task(s) are RUNNING." in rec.text("Wait for Tasks")


async def test_missing_run_task_request_is_refused(aws: Aws) -> None:
    p = params(aws)
    p = p.model_copy(update={"manifests": p.manifests.model_copy(
        update={"run_task_request": None})})
    ctx, _ = make_ctx("ecs.run_task", p)
    with pytest.raises(TaskFailed, match=r"manifests\.runTaskRequest is required"):
        await run_task(ctx)
