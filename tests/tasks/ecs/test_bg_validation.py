"""The blue/green identification (validation scenarios 1 and 2), without AWS."""

from __future__ import annotations

import pytest

from tasks.ecs.bg_validation import BLUE, GREEN, BlueGreenStateError, ServiceView, decide

PROD = "arn:aws:elasticloadbalancing:us-east-1:1:targetgroup/prod/1"
STAGE = "arn:aws:elasticloadbalancing:us-east-1:1:targetgroup/stage/2"


def svc(name: str, *groups: str, running: int = 1, tag: str | None = None,
        status: str = "ACTIVE") -> ServiceView:
    return ServiceView(name=name, status=status, tags={"BG_VERSION": tag} if tag else {},
                       target_groups=frozenset(groups), running=running, desired=running)


def test_first_deployment_takes_slot_1() -> None:
    d = decide("web", [], prod_target_group=PROD, stage_target_group=STAGE)
    assert (d.scenario, d.new_service, d.blue, d.green, d.retag) == (1, "web__1", None, None, ())


def test_scenario_1_blue_by_prod_target_group_and_tags_follow() -> None:
    blue = svc("web__2", PROD, tag=GREEN)  # wrongly tagged
    green = svc("web__1", STAGE, running=0, tag=GREEN)
    d = decide("web", [blue, green, svc("other", PROD)], prod_target_group=PROD,
               stage_target_group=STAGE)
    assert d.blue == blue and d.green == green and d.new_service == "web__1"
    assert d.retag == (("web__2", BLUE),)


def test_draining_service_in_the_new_slot_is_waited_for() -> None:
    d = decide("web", [svc("web__1", PROD, tag=BLUE), svc("web__2", status="DRAINING")],
               prod_target_group=PROD, stage_target_group=STAGE)
    assert d.new_service == "web__2" and d.green is None and d.draining is not None


@pytest.mark.parametrize(("services", "message"), [
    ([svc("web__1", PROD), svc("web__2", PROD)],
     "Services web__1 and web__2 are both attached to the prod target group"),
    ([svc("web__1", STAGE), svc("web__2", STAGE)],
     "are both attached to the stage target group"),
    ([svc("web__1", PROD, STAGE)], "is attached to both the prod target group"),
    ([svc("web__1", PROD), svc("web__2", "arn:other")],
     "Service web__2 is attached to neither the prod target group"),
])
def test_scenario_1_errors(services: list[ServiceView], message: str) -> None:
    with pytest.raises(BlueGreenStateError, match=message) as failed:
        decide("web", services, prod_target_group=PROD, stage_target_group=STAGE)
    assert "run the deployment again" in str(failed.value)


def test_scenario_2_blue_has_running_tasks() -> None:
    blue = svc("web__2", PROD, running=3, tag=BLUE)
    idle = svc("web__1", PROD, running=0, tag=BLUE)
    d = decide("web", [blue, idle], prod_target_group=PROD, stage_target_group=PROD)
    assert (d.scenario, d.blue, d.green, d.new_service) == (2, blue, idle, "web__1")
    assert d.retag == (("web__1", GREEN),)


def test_scenario_2_two_running_services_are_refused() -> None:
    with pytest.raises(BlueGreenStateError, match="both have running tasks"):
        decide("web", [svc("web__1", PROD), svc("web__2", PROD)], prod_target_group=PROD,
               stage_target_group=PROD)


def test_scenario_2_service_off_the_shared_target_group_is_refused() -> None:
    with pytest.raises(BlueGreenStateError, match="is not attached to target group"):
        decide("web", [svc("web__1", STAGE)], prod_target_group=PROD, stage_target_group=PROD)


def test_view_from_describe_services() -> None:
    view = ServiceView.of({"serviceName": "web__1", "status": "ACTIVE", "runningCount": 2,
                           "desiredCount": 2, "tags": [{"key": "BG_VERSION", "value": "BLUE"}],
                           "loadBalancers": [{"targetGroupArn": PROD, "containerPort": 80}]})
    assert view.version == BLUE and view.target_groups == {PROD} and view.running == 2
