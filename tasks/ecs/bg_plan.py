"""What a blue/green create or swap will do, and what it says about it: no AWS calls.

``bluegreen`` reads the listeners, target groups and slot services, hands what it read
to these functions, and applies the answer (tags, services, listeners, autoscaling).
Who is blue and green is ``bg_validation.decide``; this module turns that decision into
the rollback data, the requests and the log lines, so each can be tested without AWS.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from agent.context import TaskFailed
from tasks.ecs.bg_params import BlueGreenData
from tasks.ecs.bg_validation import (
    BG_VERSION,
    GREEN,
    BlueGreenStateError,
    Decision,
    ServiceView,
    decide,
)
from tasks.ecs.elb import Route
from tasks.ecs.service import status_of
from tasks.manifests import update_service_request

Service = dict[str, Any]  # one DescribeServices entry


# --------------------------------------------------------------------------- create


def decide_roles(base: str, services: Mapping[str, Service], *, prod: Route,
                 stage: Route) -> Decision:
    """Blue and green among the slot services, or a one-line refusal (nothing changed)."""
    try:
        return decide(base, [ServiceView.of(s) for s in services.values()],
                      prod_target_group=prod.target_group_arn,
                      stage_target_group=stage.target_group_arn)
    except BlueGreenStateError as exc:
        raise TaskFailed(f"Blue/green validation failed: {exc}") from None


def role_lines(decision: Decision, blue: Service | None, *, same_target_group: bool,
               update_green: bool) -> list[str]:
    lines = [f"Validation scenario {decision.scenario}: the prod and stage target groups "
             f"are {'the same' if same_target_group else 'different'}"]
    if blue is not None:
        lines.append(f"Blue service: {blue['serviceName']} (task definition "
                     f"{blue.get('taskDefinition')}, desired count {blue.get('desiredCount')})")
    else:
        lines.append("No blue service is attached to the prod target group: a first "
                     "deployment")
    if decision.green is not None:
        lines.append(f"Green service: {decision.green.name} (it will be "
                     f"{'updated' if update_green else 'replaced'})")
    return lines


def captured_line(service: str, targets: list[dict[str, Any]],
                  policies: list[dict[str, Any]]) -> str:
    return (f"Captured {len(targets)} scalable target(s) and {len(policies)} scaling "
            f"policy(ies) of service {service} for rollback")


def desired_count(definition_desired: int | None, blue: Service | None, *,
                  same_as_running: bool) -> tuple[int | None, str | None]:
    """The new service's desired count, and the line that explains it (if any)."""
    if not same_as_running:
        return definition_desired, None
    if blue is not None:
        desired = int(blue.get("desiredCount") or 0)
        return desired, f"Same as already running instances: desired count {desired}"
    return definition_desired, ("Same as already running instances: there is no blue "
                                "service, so the service definition's desired count "
                                f"{definition_desired} is used")


@dataclass(frozen=True)
class Captured:
    """What the create step read before its first change."""

    base: str
    balancer: str
    prod: Route
    stage: Route
    old_targets: list[dict[str, Any]]
    old_policies: list[dict[str, Any]]
    targets: list[dict[str, Any]]  # the manifests' autoscaling, aimed at the new service
    policies: list[dict[str, Any]]


def rollback_data(decision: Decision, blue: Service | None, seen: Captured, *,
                  in_swap: bool) -> BlueGreenData:
    """``output.blueGreen``: everything the swap and rollback steps need."""
    prod, stage = seen.prod, seen.stage
    return BlueGreenData.model_validate({
        "serviceName": seen.base, "newServiceName": decision.new_service,
        "newServiceExisted": decision.green is not None,
        "oldServiceName": blue["serviceName"] if blue else None,
        "oldDesiredCount": int(blue.get("desiredCount") or 0) if blue else None,
        "oldTaskDefinitionArn": blue.get("taskDefinition") if blue else None,
        "oldScalableTargets": seen.old_targets, "oldScalingPolicies": seen.old_policies,
        "loadBalancerArn": seen.balancer, "prod": prod.as_output(),
        "stage": stage.as_output(), "prodTargetGroupArn": prod.target_group_arn,
        "stageTargetGroupArn": stage.target_group_arn,
        "sameTargetGroup": prod.target_group_arn == stage.target_group_arn,
        "autoScalingInSwapStep": in_swap,
        "scalableTargets": seen.targets if in_swap else [],
        "scalingPolicies": seen.policies if in_swap else []})


def create_outputs(data: BlueGreenData, seen: Captured) -> dict[str, Any]:
    """The create step's outputs that are known before its first change."""
    prod, stage = seen.prod, seen.stage
    return dict(
        blueGreen=data.model_dump(by_alias=True, mode="json"), serviceName=seen.base,
        newServiceName=data.new_service_name, oldServiceName=data.old_service_name,
        loadBalancerArn=seen.balancer, prodListenerArn=prod.listener_arn,
        prodListenerRuleArn=prod.rule_arn, stageListenerArn=stage.listener_arn,
        stageListenerRuleArn=stage.rule_arn, prodTargetGroupArn=prod.target_group_arn,
        stageTargetGroupArn=stage.target_group_arn)


def green_request(definition: Mapping[str, Any], *, cluster: str, name: str, arn: str,
                  desired: int | None, update: bool) -> tuple[dict[str, Any], list[str]]:
    """The UpdateService (``update``) or CreateService request of the new service, and
    the lines announcing it."""
    lines: list[str] = []
    if update:
        request, dropped = update_service_request(dict(definition))
        if dropped:
            lines.append(f"UpdateService cannot change {', '.join(dropped)}; the green "
                         "service keeps what it was created with")
        request.update(cluster=cluster, service=name, taskDefinition=arn,
                       forceNewDeployment=True)
        if desired is not None:
            request["desiredCount"] = desired
        lines.append(f"Updating Stage Service {name} with task definition {arn} and desired "
                     f"count {request.get('desiredCount', '(unchanged)')}")
        return request, lines
    tags = [t for t in definition.get("tags") or [] if t.get("key") != BG_VERSION]
    request = {**definition, "cluster": cluster, "serviceName": name, "taskDefinition": arn,
               "tags": [*tags, {"key": BG_VERSION, "value": GREEN}]}
    if desired is not None:
        request["desiredCount"] = desired
    lines.append(f"Creating Stage Service {name} with task definition {arn} and desired "
                 f"count {request.get('desiredCount', 1)}")
    return request, lines


def deployed_lines(verb: str, name: str, service_arn: str | None,
                   stage_target_group: str) -> list[str]:
    return [f"{verb} Stage Service {name} with Arn {service_arn}", "",
            f"Target Group with Arn: {stage_target_group} is associated with "
            f"Stage Service {name}",
            f"Tag: [{BG_VERSION}, {GREEN}] is associated with Stage Service {name}", ""]


# --------------------------------------------------------------------------- swap


@dataclass(frozen=True)
class SwapPlan:
    new: Service  # the ACTIVE new service, tagged BLUE by the swap
    old: Service | None  # the ACTIVE old service to re-tag GREEN, if any
    old_warning: str | None  # the old service was recorded but is gone
    swap_routes: bool  # False when prod and stage share one target group
    remove_old_autoscaling: bool
    downsize_old: bool
    attach_new_autoscaling: bool


def plan_swap(data: BlueGreenData, services: Mapping[str, Service], *,
              do_not_downsize: bool) -> SwapPlan:
    """What the swap step changes, given the services as they are now."""
    new = services.get(data.new_service_name)
    if new is None or status_of(new) != "ACTIVE":
        raise TaskFailed(f"The new service {data.new_service_name} is {status_of(new)}, so "
                         "production cannot be switched to it; run the create step again")
    old = services.get(data.old_service_name or "")
    warning = None
    if data.old_service_name and (old is None or status_of(old) != "ACTIVE"):
        warning = (f"The old service {data.old_service_name} is {status_of(old)}: there is "
                   "nothing to re-tag or downsize")
        old = None
    return SwapPlan(new=new, old=old, old_warning=warning,
                    swap_routes=not data.same_target_group,
                    # with one target group the create step removed it already
                    remove_old_autoscaling=old is not None and not data.same_target_group,
                    downsize_old=old is not None and not do_not_downsize,
                    attach_new_autoscaling=data.auto_scaling_in_swap_step)


def keep_old_line(old: Service) -> str:
    return (f"Do not downsize old service is set: {old['serviceName']} keeps "
            f"{old.get('desiredCount')} task(s)")
