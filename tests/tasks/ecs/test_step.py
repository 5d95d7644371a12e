"""The frame every ECS handler runs in (tasks/ecs/step.py), through the handlers, against
the sandbox: a role that cannot be assumed fails the step with one line saying so, after
the step has recorded where it works, and before any ECS call."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from agent.context import TaskContext, TaskFailed
from tasks.ecs.canary import CanaryDeleteParams, CanaryDeployParams, canary_delete, canary_deploy
from tasks.ecs.params import RollingDeployParams
from tasks.ecs.rolling import rolling_deploy
from tasks.ecs.runtask import RunTaskParams, run_task
from testkit.sandbox_fixture import Aws

from .support import make_ctx

# Shorter than AssumeRole's 20-character minimum: botocore refuses it before sending, as
# STS refuses a role the delegate may not assume.
UNASSUMABLE = {"type": "inherit", "roleArn": "arn:aws:iam::1:role"}


@pytest.fixture(autouse=True)
def point_at_sandbox(aws: Aws, monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in aws.environment().items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "2")


def manifests(aws: Aws, **extra: Any) -> dict[str, Any]:
    return {
        "taskDefinition": {"store": "inline", "content": {
            "family": "framed", "requiresCompatibilities": ["FARGATE"],
            "networkMode": "awsvpc", "cpu": "256", "memory": "512",
            "containerDefinitions": [{"name": "web", "image": "nginx:1.27",
                                      "essential": True, "memory": 128}]}},
        "serviceDefinition": {"store": "inline", "content": {
            "serviceName": "framed", "launchType": "FARGATE", "desiredCount": 1,
            "networkConfiguration": aws.network_configuration}},
        **extra}


Handler = Callable[[TaskContext[Any]], Awaitable[dict[str, Any]]]


def steps(aws: Aws) -> dict[str, tuple[Handler, Any]]:
    where = {"region": aws.region, "cluster": aws.cluster, "credentials": UNASSUMABLE}
    run_request = {"store": "inline", "content": {
        "launchType": "FARGATE", "networkConfiguration": aws.network_configuration}}
    return {
        "ecs.rolling_deploy": (rolling_deploy, RollingDeployParams.model_validate(
            {**where, "manifests": manifests(aws)})),
        "ecs.canary_deploy": (canary_deploy, CanaryDeployParams.model_validate(
            {**where, "manifests": manifests(aws)})),
        "ecs.canary_delete": (canary_delete, CanaryDeleteParams.model_validate(
            {**where, "canaryServiceName": "framedCanary"})),
        "ecs.run_task": (run_task, RunTaskParams.model_validate(
            {**where, "manifests": manifests(aws, runTaskRequest=run_request)})),
    }


@pytest.mark.parametrize("task_type", ["ecs.rolling_deploy", "ecs.canary_deploy",
                                       "ecs.canary_delete", "ecs.run_task"])
async def test_a_role_that_cannot_be_assumed_fails_the_step_in_one_line(
        aws: Aws, task_type: str) -> None:
    handler, params = steps(aws)[task_type]
    ctx, rec = make_ctx(task_type, params)
    with pytest.raises(TaskFailed) as failed:
        await handler(ctx)
    message = str(failed.value)
    assert message.startswith("Connecting to AWS failed: Parameter validation failed")
    assert "RoleArn" in message
    assert "Traceback" not in rec.text()
    assert ctx.output["cluster"] == aws.cluster
    assert ctx.output["region"] == aws.region
    ecs = aws.client("ecs")
    assert ecs.list_services(cluster=aws.cluster)["serviceArns"] == []
    assert ecs.list_task_definitions(familyPrefix="framed")["taskDefinitionArns"] == []
