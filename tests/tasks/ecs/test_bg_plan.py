"""The blue/green plan (decisions, rollback data, requests, log text), without AWS."""

from __future__ import annotations

from typing import Any

import pytest

from agent.context import TaskFailed
from tasks.ecs import bg_plan
from tasks.ecs.bg_params import BlueGreenData
from tasks.ecs.bg_validation import BG_VERSION, GREEN
from tasks.ecs.elb import Route

PROD_TG = "arn:aws:elasticloadbalancing:us-east-1:1:targetgroup/prod/1"
STAGE_TG = "arn:aws:elasticloadbalancing:us-east-1:1:targetgroup/stage/2"
LB = "arn:aws:elasticloadbalancing:us-east-1:1:loadbalancer/app/web/9"


def route(role: str, target_group: str) -> Route:
    return Route(role=role, listener_arn=f"arn:listener/{role}", rule_arn=f"arn:rule/{role}",
                 is_default=True,
                 actions=({"Type": "forward", "TargetGroupArn": target_group},),
                 target_group_arn=target_group)


def service(name: str, *groups: str, running: int = 1, status: str = "ACTIVE",
            tag: str | None = None) -> dict[str, Any]:
    return {"serviceName": name, "serviceArn": f"arn:service/{name}", "status": status,
            "taskDefinition": f"arn:td/{name}:3", "desiredCount": running,
            "runningCount": running,
            "tags": [{"key": BG_VERSION, "value": tag}] if tag else [],
            "loadBalancers": [{"targetGroupArn": g} for g in groups]}


def captured(prod_tg: str = PROD_TG, stage_tg: str = STAGE_TG) -> bg_plan.Captured:
    return bg_plan.Captured(
        base="web", balancer=LB, prod=route("Prod", prod_tg), stage=route("Stage", stage_tg),
        old_targets=[{"ResourceId": "service/c/web__1"}], old_policies=[],
        targets=[{"ResourceId": "service/c/web__2"}], policies=[{"PolicyName": "p"}])


def test_second_deployment_records_blue_as_the_old_service() -> None:
    services = {"web__1": service("web__1", PROD_TG, running=3, tag="BLUE")}
    seen = captured()
    decision = bg_plan.decide_roles("web", services, prod=seen.prod, stage=seen.stage)
    assert decision.new_service == "web__2"
    data = bg_plan.rollback_data(decision, services["web__1"], seen, in_swap=False)
    assert (data.old_service_name, data.old_desired_count, data.old_task_definition_arn) == (
        "web__1", 3, "arn:td/web__1:3")
    assert data.old_scalable_targets == [{"ResourceId": "service/c/web__1"}]
    assert not data.same_target_group and not data.new_service_existed
    assert data.scalable_targets == [] and data.scaling_policies == []  # attached by create
    out = bg_plan.create_outputs(data, seen)
    assert out["blueGreen"]["oldServiceName"] == "web__1"
    assert BlueGreenData.model_validate(out["blueGreen"]) == data  # the swap step reads it
    assert (out["prodListenerRuleArn"], out["stageTargetGroupArn"]) == ("arn:rule/Prod",
                                                                        STAGE_TG)


def test_autoscaling_in_swap_step_is_handed_on() -> None:
    seen = captured()
    decision = bg_plan.decide_roles("web", {}, prod=seen.prod, stage=seen.stage)
    data = bg_plan.rollback_data(decision, None, seen, in_swap=True)
    assert data.old_service_name is None and data.old_desired_count is None
    assert data.scalable_targets == [{"ResourceId": "service/c/web__2"}]
    assert data.scaling_policies == [{"PolicyName": "p"}]


def test_an_undecidable_state_fails_in_one_line_before_any_change() -> None:
    services = {"web__1": service("web__1", PROD_TG, STAGE_TG)}
    seen = captured()
    with pytest.raises(TaskFailed) as failed:
        bg_plan.decide_roles("web", services, prod=seen.prod, stage=seen.stage)
    message = str(failed.value)
    assert message.startswith("Blue/green validation failed: Service web__1 is attached to "
                              "both") and "\n" not in message


def test_role_lines_name_the_scenario_blue_and_green() -> None:
    services = {"web__1": service("web__1", PROD_TG, running=2),
                "web__2": service("web__2", PROD_TG, running=0)}
    seen = captured(stage_tg=PROD_TG)
    decision = bg_plan.decide_roles("web", services, prod=seen.prod, stage=seen.stage)
    lines = bg_plan.role_lines(decision, services["web__1"], same_target_group=True,
                               update_green=True)
    assert lines == [
        "Validation scenario 2: the prod and stage target groups are the same",
        "Blue service: web__1 (task definition arn:td/web__1:3, desired count 2)",
        "Green service: web__2 (it will be updated)"]
    first = bg_plan.decide_roles("web", {}, prod=seen.prod, stage=seen.stage)
    assert bg_plan.role_lines(first, None, same_target_group=False, update_green=False)[1] == (
        "No blue service is attached to the prod target group: a first deployment")


def test_desired_count_follows_blue_only_when_asked() -> None:
    blue = service("web__1", PROD_TG, running=4)
    assert bg_plan.desired_count(2, blue, same_as_running=False) == (2, None)
    assert bg_plan.desired_count(2, blue, same_as_running=True) == (
        4, "Same as already running instances: desired count 4")
    desired, why = bg_plan.desired_count(2, None, same_as_running=True)
    assert desired == 2 and why is not None and "desired count 2 is used" in why


def test_create_request_replaces_the_version_tag_with_green() -> None:
    definition = {"serviceName": "web", "desiredCount": 1,
                  "tags": [{"key": BG_VERSION, "value": "BLUE"}, {"key": "team", "value": "a"}]}
    request, lines = bg_plan.green_request(definition, cluster="c", name="web__2",
                                           arn="arn:td:7", desired=3, update=False)
    assert request["serviceName"] == "web__2" and request["desiredCount"] == 3
    assert request["tags"] == [{"key": "team", "value": "a"},
                               {"key": BG_VERSION, "value": GREEN}]
    assert lines == ["Creating Stage Service web__2 with task definition arn:td:7 and "
                     "desired count 3"]
    assert definition["serviceName"] == "web"  # the manifests are not changed


def test_update_request_forces_a_new_deployment() -> None:
    definition = {"serviceName": "web", "launchType": "FARGATE"}
    request, lines = bg_plan.green_request(definition, cluster="c", name="web__2",
                                           arn="arn:td:7", desired=None, update=True)
    assert (request["service"], request["taskDefinition"], request["forceNewDeployment"]) == (
        "web__2", "arn:td:7", True)
    assert "desiredCount" not in request and "serviceName" not in request
    assert lines[-1].endswith("desired count (unchanged)")
    assert any("UpdateService cannot change launchType" in line for line in lines)


def data(**changes: Any) -> BlueGreenData:
    seen = captured(**changes.pop("groups", {}))
    decision = bg_plan.decide_roles(
        "web", {"web__1": service("web__1", seen.prod.target_group_arn, tag="BLUE")},
        prod=seen.prod, stage=seen.stage)
    recorded = bg_plan.rollback_data(decision, service("web__1", PROD_TG), seen,
                                     in_swap=changes.pop("in_swap", False))
    return recorded.model_copy(update=changes)


def test_swap_refuses_when_the_new_service_is_gone() -> None:
    with pytest.raises(TaskFailed, match="The new service web__2 is MISSING"):
        bg_plan.plan_swap(data(), {"web__1": service("web__1")}, do_not_downsize=False)
    with pytest.raises(TaskFailed, match="web__2 is DRAINING"):
        bg_plan.plan_swap(data(), {"web__2": service("web__2", status="DRAINING")},
                          do_not_downsize=False)


def test_swap_retires_the_old_service() -> None:
    services = {"web__1": service("web__1"), "web__2": service("web__2")}
    plan = bg_plan.plan_swap(data(in_swap=True), services, do_not_downsize=False)
    assert plan.new is services["web__2"] and plan.old is services["web__1"]
    assert (plan.swap_routes, plan.remove_old_autoscaling, plan.downsize_old,
            plan.attach_new_autoscaling, plan.old_warning) == (True, True, True, True, None)
    kept = bg_plan.plan_swap(data(), services, do_not_downsize=True)
    assert not kept.downsize_old and not kept.attach_new_autoscaling
    assert bg_plan.keep_old_line(services["web__1"]) == (
        "Do not downsize old service is set: web__1 keeps 1 task(s)")


def test_swap_with_one_target_group_moves_no_listener() -> None:
    services = {"web__1": service("web__1"), "web__2": service("web__2")}
    plan = bg_plan.plan_swap(data(groups={"stage_tg": PROD_TG}), services,
                             do_not_downsize=False)
    # the create step took the old service's autoscaling off already
    assert not plan.swap_routes and not plan.remove_old_autoscaling and plan.downsize_old


def test_swap_warns_when_the_old_service_is_gone() -> None:
    plan = bg_plan.plan_swap(data(), {"web__2": service("web__2")}, do_not_downsize=False)
    assert plan.old is None and not plan.downsize_old and not plan.remove_old_autoscaling
    assert plan.old_warning == ("The old service web__1 is MISSING: there is nothing to "
                                "re-tag or downsize")


def test_first_deployment_swap_has_no_old_service_and_no_warning() -> None:
    first = data(old_service_name=None)
    plan = bg_plan.plan_swap(first, {"web__2": service("web__2")}, do_not_downsize=False)
    assert plan.old is None and plan.old_warning is None


def test_deployed_lines() -> None:
    assert bg_plan.deployed_lines("Created", "web__2", "arn:s", STAGE_TG) == [
        "Created Stage Service web__2 with Arn arn:s", "",
        f"Target Group with Arn: {STAGE_TG} is associated with Stage Service web__2",
        "Tag: [BG_VERSION, GREEN] is associated with Stage Service web__2", ""]
    assert bg_plan.captured_line("web__1", [{}], [{}, {}]) == (
        "Captured 1 scalable target(s) and 2 scaling policy(ies) of service web__1 for "
        "rollback")
