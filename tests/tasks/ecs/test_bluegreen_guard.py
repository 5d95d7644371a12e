"""Blue/green rollback against the sandbox when someone changed the services since: the
new service's desired count or autoscaling (issue 17), or the old service's task
definition revision was deregistered (issue 16)."""

from __future__ import annotations

from typing import Any

import pytest

from agent.context import TaskFailed
from testkit.sandbox_fixture import Aws

from .test_bluegreen import (  # noqa: F401  (point_at_sandbox: autouse fixture)
    Elb,
    create,
    forwards_to,
    make_elb,
    point_at_sandbox,
    rollback,
    scalable_targets,
    state,
    swap,
)


async def second_deployment(aws: Aws, elb: Elb, **kwargs: Any) -> dict[str, Any]:
    """myapp__1 serves production, then myapp__2 is created and swapped in."""
    await swap(aws, (await create(aws, elb))[0])
    second, _ = await create(aws, elb, **kwargs)
    await swap(aws, second)
    assert forwards_to(aws, elb.prod) == elb.tg1
    return second


def settled(aws: Aws) -> dict[str, Any]:
    """What a refused rollback must leave alone (runningCount still moves after a swap)."""
    return {name: {k: v for k, v in state(aws, name).items() if k != "running"}
            for name in ("myapp__1", "myapp__2")} | {
        "targets": [(t["MinCapacity"], t["MaxCapacity"])
                    for t in scalable_targets(aws, "myapp__2")]}


async def test_the_create_step_records_the_new_services_count_and_autoscaling(
        aws: Aws) -> None:
    elb = make_elb(aws)
    created, _ = await create(aws, elb, scaling=True)
    data = created["blueGreen"]
    assert data["newDesiredCount"] == 2
    [target] = data["newScalableTargets"]
    assert (target["MinCapacity"], target["MaxCapacity"]) == (1, 3)


async def test_rolling_back_after_someone_scaled_the_new_service_refuses_and_changes_nothing(
        aws: Aws) -> None:
    elb = make_elb(aws)
    second = await second_deployment(aws, elb)
    aws.client("ecs").update_service(cluster=aws.cluster, service="myapp__2", desiredCount=5)
    before = settled(aws)

    with pytest.raises(TaskFailed) as failed:
        await rollback(aws, second)
    assert str(failed.value).startswith(
        "Service myapp__2's desired count is now 5; this deployment left 2 or 0: someone "
        "changed it since; refusing to roll back over it")
    assert settled(aws) == before
    assert (forwards_to(aws, elb.prod), forwards_to(aws, elb.stage)) == (elb.tg1, elb.tg2)


async def test_rolling_back_after_someone_changed_the_new_services_autoscaling_refuses(
        aws: Aws) -> None:
    elb = make_elb(aws)
    second = await second_deployment(aws, elb, scaling=True)
    aws.client("application-autoscaling").register_scalable_target(
        ServiceNamespace="ecs", ResourceId=f"service/{aws.cluster}/myapp__2",
        ScalableDimension="ecs:service:DesiredCount", MinCapacity=2, MaxCapacity=10)
    before = settled(aws)

    with pytest.raises(TaskFailed) as failed:
        await rollback(aws, second)
    assert str(failed.value).startswith(
        "Service myapp__2's autoscaling is now 2..10; this deployment left 1..3 or none: "
        "someone changed it since; refusing to roll back over it")
    assert settled(aws) == before
    assert forwards_to(aws, elb.prod) == elb.tg1


async def test_a_rollback_over_its_own_count_and_autoscaling_goes_ahead(aws: Aws) -> None:
    elb = make_elb(aws)
    second = await second_deployment(aws, elb, scaling=True)
    # Its own autoscaling may move the count within 1..3.
    aws.client("ecs").update_service(cluster=aws.cluster, service="myapp__2", desiredCount=3)

    done, rec = await rollback(aws, second)
    assert done["rolledBack"] is True
    assert "The services are as this deployment left them" in rec.lines()
    assert forwards_to(aws, elb.prod) == elb.tg2
    assert scalable_targets(aws, "myapp__2") == []


async def test_data_from_an_older_delegate_still_rolls_back(aws: Aws) -> None:
    elb = make_elb(aws)
    second = await second_deployment(aws, elb)
    older = {"blueGreen": {k: v for k, v in second["blueGreen"].items()
                           if k not in ("newDesiredCount", "newScalableTargets")}}
    aws.client("ecs").update_service(cluster=aws.cluster, service="myapp__2", desiredCount=3)

    done, _ = await rollback(aws, older)  # the count cannot be judged: not recorded
    assert done["rolledBack"] is True
    assert forwards_to(aws, elb.prod) == elb.tg2


async def test_a_rollback_scales_the_old_service_back_although_its_revision_was_deregistered(
        aws: Aws) -> None:
    """ECS refuses a deregistered revision by name, not a count change of a service that
    runs it: the rollback scales the old service up without naming its task definition."""
    elb = make_elb(aws)
    second = await second_deployment(aws, elb)
    old_td = second["blueGreen"]["oldTaskDefinitionArn"]
    aws.client("ecs").deregister_task_definition(taskDefinition=old_td)
    assert state(aws, "myapp__1")["desired"] == 0

    done, _ = await rollback(aws, second)
    assert done["rolledBack"] is True
    old = aws.client("ecs").describe_services(cluster=aws.cluster,
                                              services=["myapp__1"])["services"][0]
    assert (old["taskDefinition"], old["desiredCount"], old["runningCount"]) == (old_td, 2, 2)
    assert forwards_to(aws, elb.prod) == elb.tg2
