"""Blue/green create, swap and rollback against the sandbox (moto ELBv2 + ECS simulator),
run through their handlers."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from agent.context import TaskFailed
from tasks.ecs.bg_params import BlueGreenCreateParams, BlueGreenRollbackParams, BlueGreenSwapParams
from tasks.ecs.bluegreen import blue_green_create_service, blue_green_rollback, blue_green_swap
from testkit.sandbox_fixture import Aws

from .support import Recorded, make_ctx

IMAGE = "public.ecr.aws/nginx/nginx:1.27"
SCALABLE_TARGET = {"serviceNamespace": "ecs", "scalableDimension": "ecs:service:DesiredCount",
                   "minCapacity": 1, "maxCapacity": 3}


@pytest.fixture(autouse=True)
def point_at_sandbox(aws: Aws, monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in aws.environment().items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "2")


@dataclass
class Elb:
    lb_arn: str
    tg1: str
    tg2: str
    prod: str
    stage: str
    prod_rule: str | None = None
    stage_rule: str | None = None


def make_elb(aws: Aws, *, same_listener: bool = False, rules: bool = False,
             port: int = 80) -> Elb:
    elbv2 = aws.client("elbv2")
    vpc = aws.client("ec2").describe_subnets(SubnetIds=aws.subnets[:1])["Subnets"][0]["VpcId"]
    lb = elbv2.create_load_balancer(Name="web", Subnets=aws.subnets[:2],
                                    SecurityGroups=[aws.security_group])
    lb_arn = lb["LoadBalancers"][0]["LoadBalancerArn"]
    tg1, tg2, other = (
        elbv2.create_target_group(Name=name, Protocol="HTTP", Port=port, VpcId=vpc,
                                  TargetType="ip")["TargetGroups"][0]["TargetGroupArn"]
        for name in ("target1", "target2", "fallback"))

    def listener(port: int, target: str) -> str:
        return str(elbv2.create_listener(
            LoadBalancerArn=lb_arn, Protocol="HTTP", Port=port,
            DefaultActions=[{"Type": "forward", "TargetGroupArn": target}],
        )["Listeners"][0]["ListenerArn"])

    if not rules:
        prod = listener(80, tg1)
        return Elb(lb_arn, tg1, tg2, prod, prod if same_listener else listener(8080, tg2))
    prod, stage = listener(80, other), listener(8080, other)
    weighted = {"Type": "forward", "ForwardConfig": {"TargetGroups": [
        {"TargetGroupArn": tg1, "Weight": 100}, {"TargetGroupArn": tg2, "Weight": 0}]}}
    prod_rule = elbv2.create_rule(ListenerArn=prod, Priority=10, Actions=[weighted],
                                  Conditions=[{"Field": "path-pattern", "Values": ["/api/*"]}],
                                  )["Rules"][0]["RuleArn"]
    stage_rule = elbv2.create_rule(ListenerArn=stage, Priority=10,
                                   Actions=[{"Type": "forward", "TargetGroupArn": tg2}],
                                   Conditions=[{"Field": "path-pattern", "Values": ["/api/*"]}],
                                   )["Rules"][0]["RuleArn"]
    return Elb(lb_arn, tg1, tg2, prod, stage, prod_rule, stage_rule)


def service_definition(aws: Aws, target_group: str = "<+targetGroupArn>") -> str:
    subnets = "\n".join(f"      - {s}" for s in aws.subnets)
    return f"""\
launchType: FARGATE
serviceName: myapp
desiredCount: 2
networkConfiguration:
  awsvpcConfiguration:
    securityGroups:
      - {aws.security_group}
    subnets:
{subnets}
    assignPublicIp: DISABLED
deploymentConfiguration:
  maximumPercent: 200
  minimumHealthyPercent: 100
loadBalancers:
  - targetGroupArn: {target_group}
    containerName: nginx
    containerPort: 80
"""


def create_params(aws: Aws, elb: Elb, *, container_port: int = 80,
                  service: str | None = None, scaling: bool = False,
                  **extra: Any) -> BlueGreenCreateParams:
    more = {"scalableTargets": [{"store": "inline", "content": SCALABLE_TARGET}]} if scaling \
        else {}
    return BlueGreenCreateParams.model_validate({
        "region": aws.region, "cluster": aws.cluster, "pollInterval": "0.05s",
        "steadyStateTimeout": "30s", "loadBalancer": "web",
        "prodListenerArn": elb.prod, "stageListenerArn": elb.stage,
        "prodListenerRuleArn": elb.prod_rule, "stageListenerRuleArn": elb.stage_rule,
        "manifests": {
            "taskDefinition": {"store": "inline", "content": {
                "family": "myapp-fargate", "requiresCompatibilities": ["FARGATE"],
                "networkMode": "awsvpc", "cpu": "256", "memory": "512",
                "containerDefinitions": [{
                    "name": "nginx", "image": IMAGE, "essential": True,
                    "memoryReservation": 128,
                    "portMappings": [{"containerPort": container_port, "protocol": "tcp"}]}]}},
            "serviceDefinition": {"store": "inline",
                                  "content": service or service_definition(aws)},
            **more,
        }, **extra})


async def create(aws: Aws, elb: Elb, **kwargs: Any) -> tuple[dict[str, Any], Recorded]:
    ctx, rec = make_ctx("ecs.blue_green_create_service", create_params(aws, elb, **kwargs))
    return await blue_green_create_service(ctx), rec


async def swap(aws: Aws, created: dict[str, Any], **extra: Any) -> tuple[dict[str, Any],
                                                                       Recorded]:
    params = BlueGreenSwapParams.model_validate({
        "region": aws.region, "cluster": aws.cluster, "blueGreen": created["blueGreen"],
        "pollInterval": 0.05, **extra})
    ctx, rec = make_ctx("ecs.blue_green_swap_target_groups", params)
    return await blue_green_swap(ctx), rec


async def rollback(aws: Aws, created: dict[str, Any]) -> tuple[dict[str, Any], Recorded]:
    params = BlueGreenRollbackParams.model_validate({
        "region": aws.region, "cluster": aws.cluster, "blueGreen": created["blueGreen"],
        "pollInterval": 0.05, "steadyStateTimeout": 30})
    ctx, rec = make_ctx("ecs.blue_green_rollback", params)
    return await blue_green_rollback(ctx), rec


def forwards_to(aws: Aws, listener: str, rule: str | None = None) -> str:
    elbv2 = aws.client("elbv2")
    if rule:
        actions = elbv2.describe_rules(RuleArns=[rule])["Rules"][0]["Actions"]
    else:
        actions = elbv2.describe_listeners(ListenerArns=[listener])["Listeners"][0][
            "DefaultActions"]
    action = actions[0]
    if action.get("TargetGroupArn"):
        return str(action["TargetGroupArn"])
    groups = action["ForwardConfig"]["TargetGroups"]
    return str(max(groups, key=lambda g: g["Weight"])["TargetGroupArn"])


def state(aws: Aws, name: str) -> dict[str, Any]:
    """status, BG_VERSION tag, desired/running counts and target groups of a service."""
    answer = aws.client("ecs").describe_services(cluster=aws.cluster, services=[name],
                                                 include=["TAGS"])
    if not answer["services"]:
        return {"status": "MISSING"}
    s = answer["services"][0]
    return {"status": s["status"],
            "tag": {t["key"]: t["value"] for t in s.get("tags") or []}.get("BG_VERSION"),
            "desired": s["desiredCount"], "running": s["runningCount"],
            "groups": [lb["targetGroupArn"] for lb in s.get("loadBalancers") or []]}


async def test_two_deployments_swap_roles_each_time(aws: Aws) -> None:
    elb = make_elb(aws)
    first, rec = await create(aws, elb)
    assert (first["newServiceName"], first["oldServiceName"]) == ("myapp__1", None)
    assert state(aws, "myapp__1") == {"status": "ACTIVE", "tag": "GREEN", "desired": 2,
                                      "running": 2, "groups": [elb.tg2]}
    deploy = rec.text("Deploy")
    assert "Creating Stage Service myapp__1 with task definition " in deploy
    assert f"targets in (target-group {elb.tg2})" in deploy
    assert (f"Target Group with Arn: {elb.tg2} is associated with Stage Service myapp__1"
            in deploy)
    assert "Tag: [BG_VERSION, GREEN] is associated with Stage Service myapp__1" in deploy
    assert forwards_to(aws, elb.prod) == elb.tg1  # nothing moved before the swap

    swapped, rec = await swap(aws, first)
    assert swapped["swapped"] is True
    assert (forwards_to(aws, elb.prod), forwards_to(aws, elb.stage)) == (elb.tg2, elb.tg1)
    assert state(aws, "myapp__1")["tag"] == "BLUE"
    text = rec.text("Swap Target Groups")
    assert ("Modifying ELB Prod Listener to Forward requests to Target group associated with "
            f"new Service\n,TargetGroup: {elb.tg2}") in text
    assert f"Modifying the default Listener: {elb.prod}\n with listener rule: arn:" in text
    assert "Successfully updated Prod Listener" in text
    assert "Successfully updated Stage Listener" in text
    assert "Updating service: myapp__1 with tag: [BG_VERSION, BLUE]" in text
    assert text.rstrip().endswith("Swapping Successful.")

    second, _ = await create(aws, elb)
    assert (second["newServiceName"], second["oldServiceName"]) == ("myapp__2", "myapp__1")
    assert state(aws, "myapp__2")["groups"] == [elb.tg1]
    assert state(aws, "myapp__2")["tag"] == "GREEN"
    await swap(aws, second)
    assert (forwards_to(aws, elb.prod), forwards_to(aws, elb.stage)) == (elb.tg1, elb.tg2)
    assert state(aws, "myapp__2")["tag"] == "BLUE"
    old = state(aws, "myapp__1")
    assert (old["status"], old["tag"], old["desired"]) == ("ACTIVE", "GREEN", 0)

    third, rec = await create(aws, elb)  # the downsized green is replaced in its slot
    assert (third["newServiceName"], third["oldServiceName"]) == ("myapp__1", "myapp__2")
    assert "Deleting existing non-blue version Service: myapp__1" in rec.text("Deploy")


async def test_rollback_after_swap_restores_traffic_and_tags(aws: Aws) -> None:
    elb = make_elb(aws)
    await swap(aws, (await create(aws, elb))[0])
    second, _ = await create(aws, elb)
    await swap(aws, second)
    assert forwards_to(aws, elb.prod) == elb.tg1

    done, rec = await rollback(aws, second)
    assert done["rolledBack"] is True
    assert (forwards_to(aws, elb.prod), forwards_to(aws, elb.stage)) == (elb.tg2, elb.tg1)
    assert state(aws, "myapp__1") == {"status": "ACTIVE", "tag": "BLUE", "desired": 2,
                                      "running": 2, "groups": [elb.tg2]}
    new = state(aws, "myapp__2")
    assert (new["tag"], new["desired"]) == ("GREEN", 0)
    assert ("Updating Old Service myapp__1 with task definition" in rec.text("Rollback"))


async def test_rollback_without_swap_removes_the_green_service(aws: Aws) -> None:
    elb = make_elb(aws)
    await swap(aws, (await create(aws, elb))[0])
    second, _ = await create(aws, elb)
    await rollback(aws, second)
    assert state(aws, "myapp__2")["status"] in {"INACTIVE", "MISSING"}
    assert forwards_to(aws, elb.prod) == elb.tg2
    assert state(aws, "myapp__1")["tag"] == "BLUE"


async def test_rolling_back_a_superseded_blue_green_deployment_refuses_and_changes_nothing(
        aws: Aws) -> None:
    """Issue 17: after a newer deployment replaced the old service in its slot, rolling
    back the earlier one would hand production to that slot and retire the live one."""
    elb = make_elb(aws)
    await swap(aws, (await create(aws, elb))[0])
    second, _ = await create(aws, elb)
    await swap(aws, second)  # myapp__2 is prod
    third, _ = await create(aws, elb)
    await swap(aws, third)  # myapp__1 again, with the third's task definition
    def services() -> dict[str, Any]:  # runningCount still drains after the swap
        return {n: {k: v for k, v in state(aws, n).items() if k != "running"}
                for n in ("myapp__1", "myapp__2")}

    before = services()
    assert forwards_to(aws, elb.prod) == elb.tg2

    with pytest.raises(TaskFailed) as failed:
        await rollback(aws, second)
    short = third["taskDefinitionArn"].rsplit("/", 1)[-1]
    assert str(failed.value).startswith(
        f"Service myapp__1's PRIMARY deployment now runs {short}; this deployment left "
        "myapp-fargate:1: someone deployed since; refusing to roll back over it")
    assert services() == before
    assert (forwards_to(aws, elb.prod), forwards_to(aws, elb.stage)) == (elb.tg2, elb.tg1)


async def test_same_prod_and_stage_listener(aws: Aws) -> None:
    elb = make_elb(aws, same_listener=True)
    first, rec = await create(aws, elb)
    assert "Validation scenario 2" in rec.text("Prepare Rollback Data")
    assert state(aws, "myapp__1")["groups"] == [elb.tg1]
    _, rec = await swap(aws, first)
    assert "there are no target groups to swap" in rec.text("Swap Target Groups")
    assert forwards_to(aws, elb.prod) == elb.tg1
    second, _ = await create(aws, elb)
    assert (second["newServiceName"], second["oldServiceName"]) == ("myapp__2", "myapp__1")
    await swap(aws, second)
    assert state(aws, "myapp__2")["tag"] == "BLUE"
    old = state(aws, "myapp__1")
    assert (old["tag"], old["desired"]) == ("GREEN", 0)


async def test_listener_rules_instead_of_default_actions(aws: Aws) -> None:
    elb = make_elb(aws, rules=True)
    first, _ = await create(aws, elb)
    assert first["prodTargetGroupArn"] == elb.tg1  # the heavier half of a weighted forward
    assert state(aws, "myapp__1")["groups"] == [elb.tg2]
    fallback = forwards_to(aws, elb.prod)
    _, rec = await swap(aws, first)
    assert f"Modifying the Listener rule: {elb.prod_rule}\n" in rec.text("Swap Target Groups")
    assert forwards_to(aws, elb.prod, elb.prod_rule) == elb.tg2
    assert forwards_to(aws, elb.stage, elb.stage_rule) == elb.tg1
    assert forwards_to(aws, elb.prod) == fallback  # default actions untouched

    await rollback(aws, first)  # a first deployment: the weighted rule comes back as it was
    rule = aws.client("elbv2").describe_rules(RuleArns=[elb.prod_rule])["Rules"][0]
    weights = {g["TargetGroupArn"]: g["Weight"]
               for g in rule["Actions"][0]["ForwardConfig"]["TargetGroups"]}
    assert weights == {elb.tg1: 100, elb.tg2: 0}
    assert state(aws, "myapp__1")["status"] in {"INACTIVE", "MISSING"}


def snapshot(aws: Aws, elb: Elb) -> tuple[Any, ...]:
    ecs = aws.client("ecs")
    families = ecs.list_task_definitions()["taskDefinitionArns"]
    # Running counts are left out: the simulator keeps starting tasks meanwhile.
    services = [{k: v for k, v in state(aws, n).items() if k != "running"}
                for n in ("myapp__1", "myapp__2")]
    return (forwards_to(aws, elb.prod), forwards_to(aws, elb.stage), services,
            sorted(families))


async def failing_create(aws: Aws, elb: Elb, **kwargs: Any) -> str:
    before = snapshot(aws, elb)
    ctx, _ = make_ctx("ecs.blue_green_create_service", create_params(aws, elb, **kwargs))
    with pytest.raises(TaskFailed) as failed:
        await blue_green_create_service(ctx)
    assert snapshot(aws, elb) == before
    return str(failed.value)


async def test_validation_failures_change_nothing(aws: Aws) -> None:
    elb = make_elb(aws)
    message = await failing_create(aws, elb, service=service_definition(aws, elb.tg1))
    assert "target group expression: <+targetGroupArn> does not exist in service" in message

    # The service's port missing from the task definition is now caught offline, in
    # Fetch Manifests, by tasks/manifests/ecs_rules.py (still before any change).
    message = await failing_create(aws, elb, container_port=8080)
    assert ("loadBalancers[0].containerPort: container 'nginx' maps no containerPort 80"
            in message)

    first, _ = await create(aws, elb)
    await swap(aws, first)
    # A second service in the other slot, on the prod target group as well.
    ecs = aws.client("ecs")
    td = ecs.describe_services(cluster=aws.cluster, services=["myapp__1"])["services"][0][
        "taskDefinition"]
    ecs.create_service(cluster=aws.cluster, serviceName="myapp__2", taskDefinition=td,
                       desiredCount=1, launchType="FARGATE",
                       networkConfiguration=aws.network_configuration,
                       loadBalancers=[{"targetGroupArn": elb.tg2, "containerName": "nginx",
                                       "containerPort": 80}])
    message = await failing_create(aws, elb)
    assert ("Services myapp__1 and myapp__2 are both attached to the prod target group "
            f"{elb.tg2}") in message
    assert "Blue/green validation failed" in message

    fallback = aws.client("elbv2").describe_target_groups(Names=["fallback"])["TargetGroups"][0]
    ecs.update_service(cluster=aws.cluster, service="myapp__2", loadBalancers=[
        {"targetGroupArn": fallback["TargetGroupArn"], "containerName": "nginx",
         "containerPort": 80}])
    message = await failing_create(aws, elb)
    assert "Service myapp__2 is attached to neither the prod target group" in message


async def test_unknown_listener_is_refused(aws: Aws) -> None:
    elb = make_elb(aws)
    elb.stage = elb.prod.replace("listener/app/web", "listener/app/other")
    ctx, _ = make_ctx("ecs.blue_green_create_service", create_params(aws, elb))
    with pytest.raises(TaskFailed, match=r"stageListenerArn: listener .* does not exist"):
        await blue_green_create_service(ctx)
    assert state(aws, "myapp__1")["status"] == "MISSING"


def scalable_targets(aws: Aws, name: str) -> list[Any]:
    rid = f"service/{aws.cluster}/{name}"
    found = aws.client("application-autoscaling").describe_scalable_targets(
        ServiceNamespace="ecs")["ScalableTargets"]
    return [t for t in found if t["ResourceId"] == rid]


async def test_update_green_autoscaling_in_swap_and_keep_old(aws: Aws) -> None:
    elb = make_elb(aws)
    first, _ = await create(aws, elb, scaling=True, enableAutoScalingInSwapStep=True)
    assert scalable_targets(aws, "myapp__1") == []  # waits for the swap step
    await swap(aws, first, doNotDownsizeOldService=True)
    assert len(scalable_targets(aws, "myapp__1")) == 1

    second, _ = await create(aws, elb, sameAsAlreadyRunningInstances=True)
    await swap(aws, second, doNotDownsizeOldService=True)
    old = state(aws, "myapp__1")
    assert (old["tag"], old["desired"]) == ("GREEN", 2)  # kept running
    assert scalable_targets(aws, "myapp__1") == []  # autoscaling left the old service

    arn_before = state(aws, "myapp__1")
    third, rec = await create(aws, elb, updateGreenService=True)
    assert third["newServiceName"] == "myapp__1"
    assert "Updating Stage Service myapp__1 with task definition" in rec.text("Deploy")
    assert "Deleting existing non-blue version" not in rec.text("Deploy")
    after = state(aws, "myapp__1")
    assert (after["status"], after["tag"], after["groups"]) == ("ACTIVE", "GREEN",
                                                                arn_before["groups"])


def make_nlb(aws: Aws) -> Elb:
    """A network load balancer: TCP target groups and listeners, no listener rules."""
    elbv2 = aws.client("elbv2")
    vpc = aws.client("ec2").describe_subnets(SubnetIds=aws.subnets[:1])["Subnets"][0]["VpcId"]
    lb = elbv2.create_load_balancer(Name="web-nlb", Subnets=aws.subnets[:2], Type="network")
    lb_arn = lb["LoadBalancers"][0]["LoadBalancerArn"]
    tg1, tg2 = (
        elbv2.create_target_group(Name=name, Protocol="TCP", Port=80, VpcId=vpc,
                                  TargetType="ip")["TargetGroups"][0]["TargetGroupArn"]
        for name in ("nlb-target1", "nlb-target2"))
    prod, stage = (elbv2.create_listener(
        LoadBalancerArn=lb_arn, Protocol="TCP", Port=port,
        DefaultActions=[{"Type": "forward", "TargetGroupArn": tg}],
    )["Listeners"][0]["ListenerArn"] for port, tg in ((80, tg1), (8080, tg2)))
    return Elb(lb_arn, tg1, tg2, prod, stage)


async def test_network_load_balancer_create_swap_and_rollback(aws: Aws) -> None:
    elb = make_nlb(aws)
    created, _ = await create(aws, elb, loadBalancer="web-nlb")
    assert state(aws, "myapp__1")["groups"] == [elb.tg2]
    await swap(aws, created)
    assert (forwards_to(aws, elb.prod), forwards_to(aws, elb.stage)) == (elb.tg2, elb.tg1)
    assert state(aws, "myapp__1")["tag"] == "BLUE"
    await rollback(aws, created)
    assert (forwards_to(aws, elb.prod), forwards_to(aws, elb.stage)) == (elb.tg1, elb.tg2)
