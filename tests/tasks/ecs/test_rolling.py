"""ecs.rolling_deploy and ecs.rolling_rollback against the sandbox (moto + ECS simulator),
run directly through their handlers with a list-backed log."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from agent.context import TaskFailed
from sandbox import Sandbox
from tasks.ecs import describe
from tasks.ecs.params import RollingDeployParams, RollingRollbackParams
from tasks.ecs.rolling import rolling_deploy, rolling_rollback
from testkit.sandbox_fixture import Aws
from wire.protocol import UnitStatus

from .support import Recorded, make_ctx

# The product document's "AWS Auto Scaling with ECS" examples, verbatim.
SCALABLE_TARGET = """\
serviceNamespace: ecs
scalableDimension: ecs:service:DesiredCount
minCapacity: 1
maxCapacity: 3
"""
SCALING_POLICY = """\
scalableDimension: ecs:service:DesiredCount
serviceNamespace: ecs
policyName: P1
policyType: TargetTrackingScaling
targetTrackingScalingPolicyConfiguration:
  targetValue: 60
  predefinedMetricSpecification:
    predefinedMetricType: ECSServiceAverageCPUUtilization
  scaleOutCooldown: 300
  scaleInCooldown: 300
"""
GOOD = "public.ecr.aws/nginx/nginx:1.27"
BAD = "example.com/fail-to-start:1"


@pytest.fixture(autouse=True)
def point_at_sandbox(aws: Aws, monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in aws.environment().items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "2")


def deploy_params(aws: Aws, *, image: str = GOOD, desired: int = 1, name: str = "myapp",
                  breaker: dict[str, bool] | None = None, scaling: bool = False,
                  task_definition_arn: str | None = None,
                  **extra: Any) -> RollingDeployParams:
    service: dict[str, Any] = {
        "launchType": "FARGATE", "serviceName": name, "desiredCount": desired,
        "networkConfiguration": aws.network_configuration,
        "deploymentConfiguration": {"maximumPercent": 200, "minimumHealthyPercent": 100},
    }
    if breaker is not None:
        service["deploymentConfiguration"]["deploymentCircuitBreaker"] = breaker
    manifests: dict[str, Any] = {
        "taskDefinition": {"store": "inline", "content": {
            "family": f"{name}-td", "requiresCompatibilities": ["FARGATE"],
            "networkMode": "awsvpc", "cpu": "256", "memory": "512",
            "containerDefinitions": [{"name": "web", "image": image, "essential": True,
                                      "memory": 128,
                                      "portMappings": [{"containerPort": 80}]}]}},
        "serviceDefinition": {"store": "inline", "content": service},
    }
    if task_definition_arn is not None:
        manifests["taskDefinition"] = {"taskDefinitionArn": task_definition_arn}
    if scaling:
        manifests["scalableTargets"] = [{"store": "inline", "content": SCALABLE_TARGET}]
        manifests["scalingPolicies"] = [{"store": "inline", "content": SCALING_POLICY}]
    return RollingDeployParams.model_validate({
        "region": aws.region, "cluster": aws.cluster, "credentials": {"type": "inherit"},
        "manifests": manifests, "pollInterval": "0.05s", "steadyStateTimeout": "30s",
        **extra})


async def deploy(aws: Aws, **kwargs: Any) -> tuple[dict[str, Any], Recorded]:
    ctx, rec = make_ctx("ecs.rolling_deploy", deploy_params(aws, **kwargs))
    return await rolling_deploy(ctx), rec


@dataclass
class Failed:
    """A deploy that raised TaskFailed, with the outputs it recorded (the runner sends
    ctx.output with the result, whatever ended the task)."""

    error: TaskFailed
    output: dict[str, Any]

    def __str__(self) -> str:
        return str(self.error)


async def failing_deploy(aws: Aws, **kwargs: Any) -> tuple[Failed, Recorded]:
    ctx, rec = make_ctx("ecs.rolling_deploy", deploy_params(aws, **kwargs))
    with pytest.raises(TaskFailed) as failed:
        await rolling_deploy(ctx)
    assert "rollbackData" in ctx.output
    return Failed(failed.value, ctx.output), rec


async def rollback(aws: Aws, rollback_data: Any) -> tuple[dict[str, Any], Recorded]:
    params = RollingRollbackParams.model_validate({
        "region": aws.region, "cluster": aws.cluster, "rollbackData": rollback_data,
        "pollInterval": 0.05, "steadyStateTimeout": 30})
    ctx, rec = make_ctx("ecs.rolling_rollback", params)
    return await rolling_rollback(ctx), rec


def live(aws: Aws, name: str = "myapp") -> dict[str, Any]:
    answer = aws.client("ecs").describe_services(cluster=aws.cluster, services=[name])
    services: list[dict[str, Any]] = answer["services"]
    return services[0] if services else {"status": "MISSING"}


def autoscaling_of(aws: Aws, name: str = "myapp") -> tuple[list[Any], list[Any]]:
    aas = aws.client("application-autoscaling")
    rid = f"service/{aws.cluster}/{name}"
    targets = [t for t in aas.describe_scalable_targets(ServiceNamespace="ecs")
               ["ScalableTargets"] if t["ResourceId"] == rid]
    policies = [p for p in aas.describe_scaling_policies(ServiceNamespace="ecs", ResourceId=rid)
                ["ScalingPolicies"] if p["ResourceId"] == rid]
    return targets, policies


async def test_first_deploy_creates_and_second_updates(aws: Aws) -> None:
    first, rec1 = await deploy(aws)
    assert first["rollbackData"]["existed"] is False
    assert rec1.unit_status() == {"Fetch Manifests": UnitStatus.SUCCESS,
                                  "Prepare Rollback Data": UnitStatus.SUCCESS,
                                  "Deploy": UnitStatus.SUCCESS}
    text = rec1.text("Deploy")
    assert "Creating Task Definition with family myapp-td" in text
    assert f"Created Task Definition myapp-td:1 with Arn {first['taskDefinitionArn']}.." in text
    assert "Service myapp reached steady state" in text
    assert f"Created Service myapp with Arn {first['serviceArn']}" in text
    assert "# AWS Event: " in text and "has started 1 tasks" in text
    assert rec1.lines("Deploy")[-1] == " Deployment Successful."
    assert first["deploymentId"].startswith("ecs-svc/")

    second, rec2 = await deploy(aws, scaling=True)
    data = second["rollbackData"]
    assert data["existed"] is True
    assert data["taskDefinitionArn"] == first["taskDefinitionArn"]
    assert data["desiredCount"] == 1
    lines = rec2.lines("Deploy")
    for expected in ("Deleting Scaling Policies from service myapp..",
                     "Didn't find any Scaling Policies attached to service myapp",
                     "Deregistering Scalable Targets from service myapp..",
                     "Didn't find any Scalable Targets on service myapp",
                     f"Updating Service myapp with task definition "
                     f"{second['taskDefinitionArn']} and desired count 1",
                     "Waiting for pending tasks to finish. 1/1 running ...",
                     "Waiting for Service myapp to reach steady state",
                     "Service myapp reached steady state",
                     f"Updated Service myapp with Arn {second['serviceArn']}",
                     " Deployment Successful."):
        assert expected in lines, expected
    # History from the first deploy is not printed again.
    first_events = {e.event_id for e in rec1.events()}
    assert not first_events & {e.event_id for e in rec2.events()}
    svc = live(aws)
    assert svc["taskDefinition"] == second["taskDefinitionArn"]
    assert second["deploymentId"] != first["deploymentId"]
    targets, policies = autoscaling_of(aws)
    assert [(t["MinCapacity"], t["MaxCapacity"]) for t in targets] == [(1, 3)]
    assert [p["PolicyName"] for p in policies] == ["P1"]


async def test_failed_update_then_rollback_restores_everything(aws: Aws) -> None:
    first, _ = await deploy(aws, desired=2, scaling=True)
    failed, rec = await failing_deploy(
        aws, image=BAD, desired=2, scaling=True,
        breaker={"enable": True, "rollback": False})
    assert "tasks failed to start" in str(failed)
    log = rec.text("Deploy")
    assert "CannotPullContainerError" in log and "[TaskFailedToStart]" in log
    # The deploy took the autoscaling off before updating.
    assert autoscaling_of(aws) == ([], [])
    assert rec.unit_status()["Deploy"] is UnitStatus.FAILURE

    done, rb = await rollback(aws, failed.output["rollbackData"])
    assert done["rolledBack"] is True
    svc = live(aws)
    assert svc["taskDefinition"] == first["taskDefinitionArn"]
    assert svc["desiredCount"] == 2
    assert svc["runningCount"] == 2
    targets, policies = autoscaling_of(aws)
    assert [(t["MinCapacity"], t["MaxCapacity"]) for t in targets] == [(1, 3)]
    assert [p["PolicyName"] for p in policies] == ["P1"]
    assert policies[0]["TargetTrackingScalingPolicyConfiguration"]["TargetValue"] == 60
    assert "Service myapp reached steady state" in rb.text()


async def test_failed_first_deploy_then_rollback_deletes_the_service(aws: Aws) -> None:
    failed, _ = await failing_deploy(aws, image=BAD,
                                     breaker={"enable": True, "rollback": False})
    assert failed.output["rollbackData"]["existed"] is False
    assert live(aws)["status"] == "ACTIVE"
    done, rec = await rollback(aws, failed.output["rollbackData"])
    assert done["rolledBack"] is True
    assert live(aws)["status"] in {"INACTIVE", "MISSING"}
    assert "Deleting service myapp: it did not exist before this deployment" in rec.lines()


async def refused_rollback(aws: Aws, rollback_data: Any) -> str:
    with pytest.raises(TaskFailed) as failed:
        await rollback(aws, rollback_data)
    return str(failed.value)


def short(arn: str) -> str:
    return arn.rsplit("/", 1)[-1]


async def test_rolling_back_a_creation_after_a_newer_deploy_refuses_and_deletes_nothing(
        aws: Aws) -> None:
    """Issue 17: the rollback of the deployment that created the service deleted the
    live service that a newer deployment runs."""
    first, _ = await deploy(aws)
    second, _ = await deploy(aws, image="public.ecr.aws/nginx/nginx:1.28", desired=2)
    message = await refused_rollback(aws, first["rollbackData"])
    assert message.startswith(
        f"Service myapp's PRIMARY deployment now runs {short(second['taskDefinitionArn'])}; "
        f"this deployment left {short(first['taskDefinitionArn'])}: someone deployed since; "
        "refusing to roll back over it")
    svc = live(aws)
    assert (svc["status"], svc["taskDefinition"], svc["desiredCount"]) == (
        "ACTIVE", second["taskDefinitionArn"], 2)


async def test_rolling_back_an_update_after_a_newer_deploy_refuses_and_restores_nothing(
        aws: Aws) -> None:
    await deploy(aws, scaling=True)
    second, _ = await deploy(aws, image="public.ecr.aws/nginx/nginx:1.28")
    third, _ = await deploy(aws, image="public.ecr.aws/nginx/nginx:1.29", scaling=True)
    message = await refused_rollback(aws, second["rollbackData"])
    assert f"now runs {short(third['taskDefinitionArn'])}" in message
    assert live(aws)["taskDefinition"] == third["taskDefinitionArn"]
    assert len(autoscaling_of(aws)[0]) == 1  # its autoscaling was not taken off


async def test_rolling_back_after_someone_changed_the_desired_count_refuses(
        aws: Aws) -> None:
    first, _ = await deploy(aws)
    aws.client("ecs").update_service(cluster=aws.cluster, service="myapp", desiredCount=3)
    message = await refused_rollback(aws, first["rollbackData"])
    assert "desired count is now 3; this deployment left 1: someone changed it since" \
        in message
    assert live(aws)["status"] == "ACTIVE"


async def test_rolling_back_a_deploy_with_autoscaling_checks_its_bounds_and_restores(
        aws: Aws) -> None:
    first, _ = await deploy(aws)
    second, _ = await deploy(aws, image="public.ecr.aws/nginx/nginx:1.28", scaling=True)
    assert second["rollbackData"]["deployedScalableTargets"][0]["MaxCapacity"] == 3
    done, rec = await rollback(aws, second["rollbackData"])
    assert done["rolledBack"] is True
    assert "Service myapp is as this deployment left it" in rec.lines()
    assert live(aws)["taskDefinition"] == first["taskDefinitionArn"]


async def test_rolling_back_after_someone_attached_autoscaling_refuses(aws: Aws) -> None:
    first, _ = await deploy(aws)
    aws.client("application-autoscaling").register_scalable_target(
        ServiceNamespace="ecs", ResourceId=f"service/{aws.cluster}/myapp",
        ScalableDimension="ecs:service:DesiredCount", MinCapacity=1, MaxCapacity=8)
    message = await refused_rollback(aws, first["rollbackData"])
    assert "Service myapp's autoscaling is now 1..8; this deployment left none: someone " \
        "changed it since" in message
    assert live(aws)["status"] == "ACTIVE"


async def test_version_1_rollback_data_never_deletes_a_service(aws: Aws) -> None:
    await deploy(aws)
    message = await refused_rollback(aws, {"existed": False, "serviceName": "myapp"})
    assert "version 1, which does not say what the deployment left" in message
    assert live(aws)["status"] == "ACTIVE"


async def test_circuit_breaker_rollback_is_a_failure_with_the_stopped_reason(aws: Aws) -> None:
    first, _ = await deploy(aws)
    failed, rec = await failing_deploy(aws, image=BAD,
                                       breaker={"enable": True, "rollback": True})
    message = str(failed)
    assert "failed" in message and "CannotPullContainerError" in message
    log = rec.text("Deploy")
    assert "Stopped tasks of deployment" in log
    assert "[TaskFailedToStart]" in log
    assert " Deployment Successful." not in log
    # The rollback step then waits for ECS's own rollback (or makes it) and succeeds.
    done, _ = await rollback(aws, failed.output["rollbackData"])
    assert done["rolledBack"] is True
    assert live(aws)["taskDefinition"] == first["taskDefinitionArn"]


async def test_same_as_already_running_instances_keeps_the_live_count(aws: Aws) -> None:
    await deploy(aws, desired=2)
    _, rec = await deploy(aws, desired=1, sameAsAlreadyRunningInstances=True)
    assert "and desired count 2" in rec.text("Deploy")
    assert live(aws)["desiredCount"] == 2


async def test_task_definition_arn_forces_a_new_deployment(aws: Aws) -> None:
    first, _ = await deploy(aws)
    params = deploy_params(aws, task_definition_arn=first["taskDefinitionArn"])
    ctx, rec = make_ctx("ecs.rolling_deploy", params)
    out = await rolling_deploy(ctx)
    assert out["taskDefinitionArn"] == first["taskDefinitionArn"]
    assert out["deploymentId"] != first["deploymentId"]
    assert f"Using Task Definition {first['taskDefinitionArn']}" in rec.text("Deploy")


async def test_rollback_without_data_succeeds_and_says_so(aws: Aws) -> None:
    out, rec = await rollback(aws, None)
    assert out["rolledBack"] is False
    assert "Nothing to roll back" in rec.text()


async def test_concurrent_deploys_share_describe_calls(aws: Aws) -> None:
    import asyncio

    describe.describers().stats.reset()
    outs = await asyncio.gather(*(deploy(aws, name=f"svc-{i}") for i in range(12)))
    assert all(rec.lines("Deploy")[-1] == " Deployment Successful." for _, rec in outs)
    assert describe.describers().stats.calls <= 2 * describe.describers().stats.rounds


# moto warns (in its server thread) that ECS's model has no ThrottlingException shape.
@pytest.mark.filterwarnings("ignore:Exception\\(ThrottlingException\\):UserWarning")
async def test_throttled_polls_back_off_and_the_deploy_still_succeeds(
        aws: Aws, sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch) -> None:
    import asyncio

    import aioboto3
    from botocore.config import Config
    from botocore.exceptions import ClientError

    # No botocore retries: every throttled call reaches the step's own backoff.
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    ctx, rec = make_ctx("ecs.rolling_deploy", deploy_params(aws))
    describe.describers().stats.reset()
    env = aws.environment()
    session = aioboto3.Session(aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
                               aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"])
    throttled = 0
    sandbox.set_throttle(True)
    try:
        async with session.client("ecs", region_name=aws.region, endpoint_url=aws.endpoint_url,
                                  config=Config(retries={"max_attempts": 1})) as ecs:
            async def drain(calls: int) -> None:
                nonlocal throttled
                for _ in range(calls):
                    try:
                        await ecs.describe_services(cluster=aws.cluster, services=["myapp"])
                    except ClientError:
                        throttled += 1

            # Empty the account's DescribeServices bucket (burst 100, 20/s), then keep
            # it nearly empty while the step runs; bounded: at most 600 calls.
            for _ in range(10):
                await asyncio.gather(*(drain(10) for _ in range(5)))
                if throttled:
                    break
            assert throttled, "the sandbox never throttled DescribeServices"
            before = throttled
            deploying = asyncio.create_task(rolling_deploy(ctx))
            await asyncio.gather(*(drain(20) for _ in range(5)))
            during = throttled - before
            out = await asyncio.wait_for(deploying, 60)
    finally:
        sandbox.set_throttle(False)
    assert during > 0
    assert rec.lines("Deploy")[-1] == " Deployment Successful."
    assert out["deploymentId"].startswith("ecs-svc/")


async def test_a_draining_service_is_waited_out_then_created_again(aws: Aws) -> None:
    await deploy(aws)
    aws.client("ecs").delete_service(cluster=aws.cluster, service="myapp", force=True)
    assert live(aws)["status"] in {"DRAINING", "INACTIVE"}
    out, rec = await deploy(aws)
    assert out["rollbackData"]["existed"] is False
    assert "Creating Service myapp" in rec.text("Deploy")
    assert live(aws)["status"] == "ACTIVE"


def test_task_types_register_with_lower_camel_params() -> None:
    from agent.context import TaskRegistry
    from tasks.ecs import register

    registry = TaskRegistry()
    register(registry)
    deploy_type = registry.get("ecs.rolling_deploy")
    assert deploy_type is not None
    assert deploy_type.units == ("Fetch Manifests", "Prepare Rollback Data", "Deploy")
    assert "rollbackData" in deploy_type.outputs
    params = RollingRollbackParams.model_validate({
        "region": "us-east-1", "cluster": "c", "pollInterval": "2s",
        "steadyStateTimeout": "10m",
        "rollbackData": '{"existed": true, "serviceName": "myapp", "desiredCount": 2}'})
    assert params.poll_interval == 2.0 and params.steady_state_timeout == 600.0
    assert params.rollback_data is not None and params.rollback_data.desired_count == 2
    assert RollingRollbackParams.model_validate(
        {"region": "r", "cluster": "c", "rollbackData": {}}).rollback_data is None
