"""The rollback guard's decision (tasks/ecs/rollback_guard), and the rollback data it
reads (tasks/ecs/rollback_data): pure, so plain dicts stand in for DescribeServices."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from agent.context import TaskFailed
from tasks.ecs.params import RollingRollbackParams
from tasks.ecs.rollback_data import RollbackData
from tasks.ecs.rollback_guard import (
    LeftBehind,
    check,
    refusal,
    scaling_bounds,
    scaling_refusal,
)

TD = "arn:aws:ecs:us-east-1:123456789012:task-definition/web:{}"


def service(revision: int, desired: int = 2, *, dep_id: str = "ecs-svc/2",
            status: str = "ACTIVE") -> dict[str, Any]:
    return {"serviceName": "web", "status": status, "desiredCount": desired,
            "taskDefinition": TD.format(revision),
            "deployments": [{"id": "ecs-svc/1", "status": "ACTIVE",
                             "taskDefinition": TD.format(revision - 1)},
                            {"id": dep_id, "status": "PRIMARY",
                             "taskDefinition": TD.format(revision)}]}


OURS = LeftBehind("web", (TD.format(12), TD.format(11)), "ecs-svc/2", (2,))


def test_a_service_as_this_deployment_left_it_passes() -> None:
    assert refusal(service(12), OURS) is None


def test_a_newer_deployment_is_refused_naming_both_task_definitions() -> None:
    assert refusal(service(17, dep_id="ecs-svc/9"), OURS) == (
        "service web's PRIMARY deployment now runs web:17; this deployment left web:12: "
        "someone deployed since; refusing to roll back over it")


def test_the_circuit_breakers_rollback_to_the_replaced_task_definition_passes() -> None:
    assert refusal(service(11, dep_id="ecs-svc/3"), OURS) is None


def test_our_deployment_id_passes_whatever_the_task_definition_says() -> None:
    assert refusal(service(40, dep_id="ecs-svc/2"), OURS) is None


def test_a_changed_desired_count_is_refused() -> None:
    reason = refusal(service(12, desired=5), OURS)
    assert reason == ("service web's desired count is now 5; this deployment left 2: "
                      "someone changed it since; refusing to roll back over it")


def test_autoscaling_may_move_the_count_within_its_bounds_only() -> None:
    scaled = LeftBehind("web", (TD.format(12),), None, (2,), (1, 4))
    assert refusal(service(12, desired=4), scaled) is None
    assert "outside the 1..4 its autoscaling allows" in str(refusal(service(12, 9), scaled))


def test_a_service_that_is_not_active_is_left_to_the_step() -> None:
    assert refusal(None, OURS) is None
    assert refusal(service(17, status="DRAINING"), OURS) is None


def test_an_active_service_this_deployment_never_deployed_is_refused() -> None:
    reason = refusal(service(3), LeftBehind("web", ()))
    assert reason is not None and "did not get as far as deploying it" in reason


def test_check_raises_one_line_task_failed_and_passes_silently() -> None:
    check(service(12), OURS)
    with pytest.raises(TaskFailed) as failed:
        check(service(17, dep_id="ecs-svc/9"), OURS)
    assert str(failed.value).startswith("Service web's PRIMARY deployment now runs web:17")
    assert "\n" not in str(failed.value)


def test_scaling_bounds_read_the_desired_count_dimension() -> None:
    assert scaling_bounds([{"ScalableDimension": "ecs:service:DesiredCount",
                            "MinCapacity": 1, "MaxCapacity": 3}]) == (1, 3)
    assert scaling_bounds([]) is None


def test_rollback_data_gives_the_guard_ours_then_the_replaced_one() -> None:
    data = RollbackData.model_validate({
        "version": 2, "existed": True, "serviceName": "web", "taskDefinitionArn": TD.format(11),
        "desiredCount": 3, "deployedTaskDefinitionArn": TD.format(12),
        "deployedDesiredCount": 2, "deploymentId": "ecs-svc/2"})
    assert data.left_behind() == LeftBehind("web", (TD.format(12), TD.format(11)),
                                            "ecs-svc/2", (2, 3))


def test_rollback_data_that_changed_nothing_judges_no_count() -> None:
    data = RollbackData.model_validate({"version": 2, "existed": True, "serviceName": "web",
                                        "taskDefinitionArn": TD.format(11), "desiredCount": 3})
    assert data.left_behind() == LeftBehind("web", (TD.format(11),))


def test_version_1_rollback_data_still_parses_and_says_it_cannot_be_checked() -> None:
    data = RollbackData.model_validate({"existed": False, "serviceName": "web",
                                        "taskDefinitionArn": None, "desiredCount": None,
                                        "scalableTargets": [], "scalingPolicies": [],
                                        "serviceArn": None})
    assert (data.version, data.knows_what_it_left) == (1, False)


@pytest.mark.parametrize(("data", "names"), [
    ({"existed": True}, "serviceName"),
    ({"existed": True, "serviceName": "web", "version": 7}, "version"),
    ({"existed": True, "serviceName": "web", "desiredCount": "many"}, "desiredCount"),
    ({"existed": True, "serviceName": "web", "taskDefinition": "x"}, "taskDefinition"),
])
def test_bad_rollback_data_is_refused_naming_the_field(data: dict[str, Any],
                                                       names: str) -> None:
    with pytest.raises(ValidationError) as failed:
        RollingRollbackParams.model_validate({"region": "us-east-1", "cluster": "c",
                                              "rollbackData": data})
    assert names in str(failed.value)


def test_rollback_data_that_is_not_json_says_so_with_where() -> None:
    with pytest.raises(ValidationError) as failed:
        RollingRollbackParams.model_validate({"region": "us-east-1", "cluster": "c",
                                              "rollbackData": "{not json"})
    assert "is not JSON (Expecting property name enclosed in double quotes at line 1 " \
        "column 2)" in str(failed.value)


def test_autoscaling_other_than_ours_is_refused_and_ours_passes() -> None:
    target = {"ScalableDimension": "ecs:service:DesiredCount", "MinCapacity": 1,
              "MaxCapacity": 4}
    scaled = LeftBehind("web", (TD.format(12),), scaling=(1, 4))
    assert scaling_refusal([target], scaled) is None
    assert scaling_refusal([], scaled) == (
        "service web's autoscaling is now none; this deployment left 1..4: someone changed "
        "it since; refusing to roll back over it")
    with pytest.raises(TaskFailed):
        check(service(12), OURS, [target])
    check(service(12), OURS, [])
