"""What a blue/green deployment left on its services (tasks/ecs/bg_guard), as the rollback
guard judges it (issue 17: "its desired count and scaling are ours"): pure, plain dicts
stand in for DescribeServices and DescribeScalableTargets."""

from __future__ import annotations

from typing import Any

from tasks.ecs import bg_guard
from tasks.ecs.bg_params import BlueGreenData
from tasks.ecs.rollback_guard import LeftBehind, refusal, scaling_refusal

TD = "arn:aws:ecs:us-east-1:123456789012:task-definition/web:{}"
DIMENSION = "ecs:service:DesiredCount"


def target(low: int, high: int) -> dict[str, Any]:
    return {"ServiceNamespace": "ecs", "ScalableDimension": DIMENSION,
            "ResourceId": "service/c/web__2", "MinCapacity": low, "MaxCapacity": high}


def data(**fields: Any) -> BlueGreenData:
    base: dict[str, Any] = {
        "serviceName": "web", "newServiceName": "web__2", "oldServiceName": "web__1",
        "oldDesiredCount": 3, "oldTaskDefinitionArn": TD.format(1),
        "oldScalableTargets": [target(2, 6)], "loadBalancerArn": "lb", "prod": {},
        "stage": {}, "prodTargetGroupArn": "tg1", "stageTargetGroupArn": "tg2",
        "sameTargetGroup": False, "taskDefinitionArn": TD.format(2),
        "newDesiredCount": 2, "newScalableTargets": [target(1, 4)]}
    return BlueGreenData.model_validate(base | fields)


def service(name: str, revision: int, desired: int) -> dict[str, Any]:
    return {"serviceName": name, "status": "ACTIVE", "desiredCount": desired,
            "taskDefinition": TD.format(revision),
            "deployments": [{"id": "ecs-svc/1", "status": "PRIMARY",
                             "taskDefinition": TD.format(revision)}]}


def test_the_new_service_is_judged_by_its_count_and_its_autoscaling() -> None:
    left = bg_guard.new_service(data(), swapped=True)
    assert left == LeftBehind("web__2", (TD.format(2),), desired_counts=(2, 0),
                              scaling=(1, 4), scaling_optional=True)
    assert bg_guard.checks_new_scaling(data())


def test_a_new_service_whose_count_someone_changed_is_refused() -> None:
    left = bg_guard.new_service(data(newScalableTargets=[]), swapped=True)
    assert left is not None
    assert refusal(service("web__2", 2, 2), left) is None
    assert refusal(service("web__2", 2, 0), left) is None  # an earlier rollback downsized it
    assert refusal(service("web__2", 2, 7), left) == (
        "service web__2's desired count is now 7; this deployment left 2 or 0: someone "
        "changed it since; refusing to roll back over it")


def test_the_new_services_autoscaling_may_move_its_count_within_its_bounds_only() -> None:
    left = bg_guard.new_service(data(), swapped=False)
    assert left is not None
    assert refusal(service("web__2", 2, 4), left) is None
    assert refusal(service("web__2", 2, 5), left) == (
        "service web__2's desired count is now 5, outside the 1..4 its autoscaling allows: "
        "someone changed it since; refusing to roll back over it")


def test_autoscaling_other_than_the_new_services_own_is_refused_and_none_passes() -> None:
    left = bg_guard.new_service(data(), swapped=False)
    assert left is not None
    assert scaling_refusal([target(1, 4)], left) is None
    assert scaling_refusal([], left) is None  # the rollback's own retire step takes it off
    assert scaling_refusal([target(1, 9)], left) == (
        "service web__2's autoscaling is now 1..9; this deployment left 1..4 or none: "
        "someone changed it since; refusing to roll back over it")


def test_autoscaling_attached_in_the_swap_step_is_ours_only_once_swapped() -> None:
    in_swap = data(autoScalingInSwapStep=True, scalableTargets=[target(2, 5)],
                   newScalableTargets=[])
    swapped = bg_guard.new_service(in_swap, swapped=True)
    waiting = bg_guard.new_service(in_swap, swapped=False)
    assert swapped is not None and waiting is not None
    assert (swapped.scaling, waiting.scaling) == ((2, 5), None)
    assert scaling_refusal([target(2, 5)], swapped) is None
    assert scaling_refusal([], swapped) is None  # the swap stopped before attaching it
    assert scaling_refusal([target(2, 5)], waiting) is not None


def test_data_from_an_older_delegate_judges_the_task_definition_only() -> None:
    old = data(newDesiredCount=None, newScalableTargets=None)
    left = bg_guard.new_service(old, swapped=True)
    assert left == LeftBehind("web__2", (TD.format(2),), scaling=None,
                              scaling_optional=True)
    assert not bg_guard.checks_new_scaling(old)
    assert refusal(service("web__2", 2, 9), left) is None
    assert refusal(service("web__2", 3, 2), left) is not None


def test_a_create_step_that_deployed_nothing_leaves_no_new_service_to_judge() -> None:
    assert bg_guard.new_service(data(taskDefinitionArn=None), swapped=False) is None


def test_the_old_service_may_be_downsized_and_lose_its_autoscaling_but_not_change() -> None:
    left = bg_guard.old_service(data())
    assert left == LeftBehind("web__1", (TD.format(1),), desired_counts=(3, 0),
                              scaling=(2, 6), scaling_optional=True)
    assert refusal(service("web__1", 1, 0), left) is None
    assert scaling_refusal([], left) is None  # the swap takes it off
    assert scaling_refusal([target(2, 6)], left) is None
    assert scaling_refusal([target(1, 20)], left) == (
        "service web__1's autoscaling is now 1..20; this deployment left 2..6 or none: "
        "someone changed it since; refusing to roll back over it")


def test_no_old_service_on_a_first_deployment() -> None:
    first = data(oldServiceName=None, oldTaskDefinitionArn=None, oldDesiredCount=None)
    assert bg_guard.old_service(first) is None
