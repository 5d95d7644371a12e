"""ecs.canary_deploy and ecs.canary_delete against the sandbox, through their handlers."""

from __future__ import annotations

from typing import Any

import pytest

from agent.context import TaskFailed
from tasks.ecs.canary import CanaryDeleteParams, CanaryDeployParams, canary_delete, canary_deploy
from testkit.sandbox_fixture import Aws

from .support import Recorded, make_ctx


@pytest.fixture(autouse=True)
def point_at_sandbox(aws: Aws, monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in aws.environment().items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "2")


def deploy_params(aws: Aws, image: str = "public.ecr.aws/nginx/nginx:1.27",
                  breaker: bool = False) -> CanaryDeployParams:
    service: dict[str, Any] = {"launchType": "FARGATE", "serviceName": "myapp",
                               "desiredCount": 4,
                               "networkConfiguration": aws.network_configuration}
    if breaker:
        service["deploymentConfiguration"] = {
            "deploymentCircuitBreaker": {"enable": True, "rollback": False}}
    return CanaryDeployParams.model_validate({
        "region": aws.region, "cluster": aws.cluster, "pollInterval": "0.05s",
        "steadyStateTimeout": "30s",
        "manifests": {
            "taskDefinition": {"store": "inline", "content": {
                "family": "myapp-td", "requiresCompatibilities": ["FARGATE"],
                "networkMode": "awsvpc", "cpu": "256", "memory": "512",
                "containerDefinitions": [{"name": "web", "image": image, "essential": True,
                                          "memory": 128}]}},
            "serviceDefinition": {"store": "inline", "content": service},
        }})


async def deploy(aws: Aws, **kwargs: Any) -> tuple[dict[str, Any], Recorded]:
    ctx, rec = make_ctx("ecs.canary_deploy", deploy_params(aws, **kwargs))
    return await canary_deploy(ctx), rec


async def delete(aws: Aws, name: str | None,
                 task_definition_arn: str | None = None) -> tuple[dict[str, Any], Recorded]:
    params = CanaryDeleteParams.model_validate({
        "region": aws.region, "cluster": aws.cluster, "canaryServiceName": name,
        "taskDefinitionArn": task_definition_arn, "pollInterval": 0.05,
        "steadyStateTimeout": 30})
    ctx, rec = make_ctx("ecs.canary_delete", params)
    return await canary_delete(ctx), rec


def active_services(aws: Aws) -> list[str]:
    arns = aws.client("ecs").list_services(cluster=aws.cluster)["serviceArns"]
    return sorted(a.rsplit("/", 1)[-1] for a in arns)


async def test_deploy_runs_one_task_and_delete_removes_it(aws: Aws) -> None:
    out, rec = await deploy(aws)
    assert out["canaryServiceName"] == "myappCanary"
    service = aws.client("ecs").describe_services(cluster=aws.cluster,
                                                  services=["myappCanary"])["services"][0]
    assert (service["desiredCount"], service["runningCount"]) == (1, 1)
    text = rec.text("Deploy")
    assert "Creating Service myappCanary with task definition " in text
    assert "and desired count 1" in text
    assert "Service myappCanary reached steady state" in text
    assert f"Created Service myappCanary with Arn {service['serviceArn']}" in text
    assert "Deployment Successful." in text

    done, rec = await delete(aws, out["canaryServiceName"], out["taskDefinitionArn"])
    assert done["deleted"] is True
    assert rec.lines("Delete Canary Service") == [
        "Deleting service myappCanary..",
        "Waiting for existing Service myappCanary to reach inactive state",
        "Existing Service myappCanary reached inactive state",
        "Canary service myappCanary deleted",
    ]
    assert active_services(aws) == []
    again, _ = await delete(aws, "myappCanary")
    assert again["deleted"] is False
    nothing, _ = await delete(aws, None)
    assert nothing["deleted"] is False


async def test_deploying_twice_leaves_one_canary(aws: Aws) -> None:
    first, _ = await deploy(aws)
    second, rec = await deploy(aws)
    assert "Deleting existing Canary Service myappCanary" in rec.text("Deploy")
    assert active_services(aws) == ["myappCanary"]
    assert second["serviceArn"] == first["serviceArn"]
    assert second["taskDefinitionArn"] != first["taskDefinitionArn"]


async def test_deleting_an_older_canary_after_a_newer_one_refuses_and_keeps_it(
        aws: Aws) -> None:
    """Issue 17: a rollback of an earlier canary must not delete a later deployment's."""
    first, _ = await deploy(aws)
    second, _ = await deploy(aws)
    with pytest.raises(TaskFailed) as failed:
        await delete(aws, "myappCanary", first["taskDefinitionArn"])
    newer, older = (o["taskDefinitionArn"].rsplit("/", 1)[-1] for o in (second, first))
    assert str(failed.value).startswith(
        f"Service myappCanary's PRIMARY deployment now runs {newer}; this deployment left "
        f"{older}: someone deployed since; refusing to roll back over it")
    assert active_services(aws) == ["myappCanary"]


async def test_without_its_task_definition_the_delete_checks_the_count(aws: Aws) -> None:
    await deploy(aws)
    aws.client("ecs").update_service(cluster=aws.cluster, service="myappCanary",
                                     desiredCount=4)
    with pytest.raises(TaskFailed) as failed:
        await delete(aws, "myappCanary")
    assert "desired count is now 4; this deployment left 1" in str(failed.value)
    assert active_services(aws) == ["myappCanary"]


async def test_circuit_breaker_fails_the_canary_with_the_reason(aws: Aws) -> None:
    ctx, rec = make_ctx("ecs.canary_deploy",
                        deploy_params(aws, image="example.com/crash:1", breaker=True))
    with pytest.raises(TaskFailed) as failed:
        await canary_deploy(ctx)
    assert ctx.output["canaryServiceName"] == "myappCanary"  # kept for the result
    assert "circuit breaker" in str(failed.value) or "deployment failed" in str(failed.value)
    assert "exit code 1" in rec.text("Deploy")
