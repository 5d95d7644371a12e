"""Blue/green behind an ALB or NLB: ``ecs.blue_green_create_service``,
``ecs.blue_green_swap_target_groups`` and ``ecs.blue_green_rollback``.

Create: read the prod and stage listeners (or rules) and the target groups they forward
to; render ``<+targetGroupArn>`` as the stage target group; check ports; identify blue and
green among ``<name>__1`` / ``<name>__2`` (``bg_validation``); record everything the swap
and rollback need in ``output.blueGreen``; only then change anything: fix tags, replace
(or update) the green service with the new version tagged ``BG_VERSION=GREEN``, wait for
steady state, attach autoscaling unless the swap step does it.

Swap: point the prod route at the stage target group and the stage route at the prod one,
re-tag both services, take autoscaling off the old one and downsize it to 0 (kept).

Rollback: first check that both services are as this deployment left them (task
definition, desired count, autoscaling: ``bg_guard``), else refuse and write nothing;
then scale the old service back up, put the captured listener actions back, restore
tags and the old service's autoscaling, then scale the new service down (after a swap)
or delete it (no swap, or no old service).

The decisions and what the log says about them (rollback data, requests, the swap's
plan) are ``bg_plan``'s, without AWS calls; the functions here read and apply them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from agent.context import TaskContext, TaskFailed, TaskRegistry, TaskType, UnitLog
from tasks.aws.ports import AutoScalingClient, EcsClient, Elbv2Client
from tasks.ecs import autoscaling, bg_guard, bg_plan, elb
from tasks.ecs.bg_params import (
    BlueGreenCreateParams,
    BlueGreenData,
    BlueGreenRollbackParams,
    BlueGreenSwapParams,
)
from tasks.ecs.bg_validation import (
    BG_VERSION,
    BLUE,
    GREEN,
    Decision,
    ServiceView,
    slot_names,
)
from tasks.ecs.errors import aws_errors
from tasks.ecs.rollback_guard import check as check_untouched
from tasks.ecs.service import deployment_id, status_of, watch_deployment
from tasks.ecs.step import ecs_step
from tasks.ecs.taskdef import container_definitions, register_task_definition
from tasks.ecs.teardown import delete_service, wait_inactive
from tasks.ecs.watcher import ServiceDescriber
from tasks.manifests import (
    FetchedManifests,
    ManifestError,
    Manifests,
    build_manifests,
    fetch_manifests,
    retarget,
    variables_for,
)

TARGET_GROUP_EXPRESSION = "<+targetGroupArn>"


def _cluster_name(cluster: str) -> str:
    return cluster.rsplit("/", 1)[-1]


async def describe_services(ecs: EcsClient, cluster: str,
                            names: list[str]) -> dict[str, dict[str, Any]]:
    """ACTIVE, DRAINING and INACTIVE services by name, with their tags (MISSING: absent)."""
    with aws_errors(f"DescribeServices {', '.join(names)} in cluster {cluster}"):
        answer = await ecs.describe_services(cluster=cluster, services=names, include=["TAGS"])
    return {str(s["serviceName"]): s for s in answer.get("services") or []}


async def set_version_tag(ecs: EcsClient, log: UnitLog, service: dict[str, Any],
                          value: str) -> None:
    name = service["serviceName"]
    log.info(f"Updating service: {name} with tag: [{BG_VERSION}, {value}]")
    with aws_errors(f"TagResource on service {name}"):
        await ecs.tag_resource(resourceArn=service["serviceArn"],
                               tags=[{"key": BG_VERSION, "value": value}])



# --------------------------------------------------------------------------- create


@dataclass
class Plan:
    requests: Manifests
    decision: Decision
    data: BlueGreenData
    services: dict[str, dict[str, Any]]
    desired: int | None
    scalable_targets: list[dict[str, Any]] = field(default_factory=list)
    scaling_policies: list[dict[str, Any]] = field(default_factory=list)


async def blue_green_create_service(ctx: TaskContext[BlueGreenCreateParams]) -> dict[str, Any]:
    params = ctx.params
    async with ecs_step(ctx) as step:
        async with ctx.log.unit("Fetch Manifests") as log:
            fetched = await fetch_manifests(params.manifests, ctx, step.aws, log)
        ecs, elbv2, aas = await step.ecs(), await step.elbv2(), await step.autoscaling()
        async with ctx.log.unit("Prepare Rollback Data") as log:
            plan = await _prepare(ctx, ecs, elbv2, aas, log, params, fetched)
        async with ctx.log.unit("Deploy") as log, step.describer(ecs) as describer:
            await _create(ctx, ecs, aas, log, describer, params, plan)
    return dict(ctx.output)


def _build(ctx: TaskContext, log: UnitLog, params: BlueGreenCreateParams,
           fetched: FetchedManifests, stage_target_group: str) -> Manifests:
    variables = variables_for(ctx, region=params.region, cluster=params.cluster,
                              extra={"targetGroupArn": stage_target_group})
    try:
        requests = build_manifests(fetched, variables, cluster=params.cluster)
    except ManifestError as exc:
        raise TaskFailed(str(exc)) from None
    for warning in requests.warnings:
        log.warn(warning)
    if requests.service_definition is None or requests.service_name is None:
        raise TaskFailed("manifests.serviceDefinition is required for a blue/green "
                         "deployment: give the CreateService request (with serviceName)")
    if requests.task_definition is None and requests.task_definition_arn is None:
        raise TaskFailed("manifests.taskDefinition is required for a blue/green deployment: "
                         "give a RegisterTaskDefinition request or {taskDefinitionArn: ARN}")
    balancers = requests.service_definition.get("loadBalancers") or []
    if not any(b.get("targetGroupArn") == stage_target_group for b in balancers):
        file = ", ".join(f.name for f in fetched.service_definition) or "the service definition"
        raise TaskFailed(
            f"target group expression: {TARGET_GROUP_EXPRESSION} does not exist in service "
            f"definition {file}: blue/green needs loadBalancers[].targetGroupArn: "
            f"{TARGET_GROUP_EXPRESSION} (with containerName and containerPort), which "
            "becomes the stage listener's target group. Add it and run the deployment again.")
    return requests


async def _read_routes(elbv2: Elbv2Client, log: UnitLog,
                      params: BlueGreenCreateParams) -> tuple[str, elb.Route, elb.Route]:
    with aws_errors(f"DescribeLoadBalancers {params.load_balancer}"):
        balancer = await elb.load_balancer_arn(elbv2, params.load_balancer)
        prod = await elb.resolve_route(elbv2, log, role="Prod", balancer_arn=balancer,
                                       listener_arn=params.prod_listener_arn,
                                       rule_arn=params.prod_listener_rule_arn)
        stage = await elb.resolve_route(elbv2, log, role="Stage", balancer_arn=balancer,
                                        listener_arn=params.stage_listener_arn,
                                        rule_arn=params.stage_listener_rule_arn)
    log.info(f"Prod Listener forwards to Target Group {prod.target_group_arn}")
    log.info(f"Stage Listener forwards to Target Group {stage.target_group_arn}")
    return balancer, prod, stage


async def _check_ports(ecs: EcsClient, elbv2: Elbv2Client, requests: Manifests,
                       prod: elb.Route, stage: elb.Route) -> None:
    containers = await container_definitions(ecs, requests)
    with aws_errors("DescribeTargetGroups"):
        for arn in dict.fromkeys([stage.target_group_arn, prod.target_group_arn]):
            group = await elb.target_group(elbv2, arn)
            elb.check_port(arn, group.get("Port"), containers)


async def _capture_autoscaling(aas: AutoScalingClient, log: UnitLog, cluster: str,
                               blue: dict[str, Any] | None,
                               ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The blue service's autoscaling, which a rollback puts back."""
    if blue is None:
        return [], []
    with aws_errors(f"Reading the autoscaling of service {blue['serviceName']}"):
        targets, policies = await autoscaling.capture(aas, cluster, blue["serviceName"])
    log.info(bg_plan.captured_line(blue["serviceName"], targets, policies))
    return targets, policies


async def _prepare(ctx: TaskContext, ecs: EcsClient, elbv2: Elbv2Client,
                   aas: AutoScalingClient, log: UnitLog, params: BlueGreenCreateParams,
                   fetched: FetchedManifests) -> Plan:
    """Every check, and the rollback data, before the first change."""
    balancer, prod, stage = await _read_routes(elbv2, log, params)
    requests = _build(ctx, log, params, fetched, stage.target_group_arn)
    await _check_ports(ecs, elbv2, requests, prod, stage)
    base = str(requests.service_name)
    services = await describe_services(ecs, params.cluster, list(slot_names(base)))
    decision = bg_plan.decide_roles(base, services, prod=prod, stage=stage)
    blue = services.get(decision.blue.name) if decision.blue else None
    for line in bg_plan.role_lines(
            decision, blue, same_target_group=prod.target_group_arn == stage.target_group_arn,
            update_green=params.update_green_service):
        log.info(line)
    old_targets, old_policies = await _capture_autoscaling(aas, log, params.cluster, blue)
    definition = requests.service_definition or {}
    desired, why = bg_plan.desired_count(
        definition.get("desiredCount"), blue,
        same_as_running=params.same_as_already_running_instances)
    if why is not None:
        log.info(why)
    cluster, new_name = _cluster_name(params.cluster), decision.new_service
    seen = bg_plan.Captured(
        base=base, balancer=balancer, prod=prod, stage=stage, old_targets=old_targets,
        old_policies=old_policies,
        targets=retarget(requests.scalable_targets, cluster, new_name),
        policies=retarget(requests.scaling_policies, cluster, new_name))
    data = bg_plan.rollback_data(decision, blue, seen,
                                 in_swap=params.enable_auto_scaling_in_swap_step)
    ctx.output.update(bg_plan.create_outputs(data, seen))
    return Plan(requests, decision, data, services, desired, seen.targets, seen.policies)


async def _create(ctx: TaskContext, ecs: EcsClient, aas: AutoScalingClient, log: UnitLog,
                  describer: ServiceDescriber, params: BlueGreenCreateParams,
                  plan: Plan) -> None:
    out = ctx.output
    for name, value in plan.decision.retag:
        log.info(f"Service {name} is {value.lower()} by its target group; correcting its tag")
        await set_version_tag(ecs, log, plan.services[name], value)
    if plan.decision.retag:
        log.info("")
    arn = await register_task_definition(ecs, log, plan.requests)
    out["taskDefinitionArn"] = arn
    out["blueGreen"]["taskDefinitionArn"] = arn
    log.info("")
    green = await _clear_slot(ecs, aas, log, describer, params, plan)
    started = datetime.now(UTC)
    # What the new service is left with, for the rollback's guard: recorded before the
    # change too, since the step can fail right after it.
    left = out["blueGreen"]
    left.update(newDesiredCount=_planned_count(plan, green), newScalableTargets=[])
    service, verb = await _deploy_green(ecs, log, params, plan, arn, green)
    left["newDesiredCount"] = service.get("desiredCount", left["newDesiredCount"])
    out.update(newServiceArn=service.get("serviceArn"), deploymentId=deployment_id(service))
    await watch_deployment(describer, ecs, log, params, service, arn, started=started)
    for line in bg_plan.deployed_lines(verb, plan.decision.new_service,
                                       service.get("serviceArn"),
                                       plan.data.stage_target_group_arn):
        log.info(line)
    await _green_autoscaling(aas, log, params, plan)
    if not plan.data.auto_scaling_in_swap_step:
        left["newScalableTargets"] = plan.scalable_targets


def _planned_count(plan: Plan, green: dict[str, Any] | None) -> int:
    """The desired count the new service gets: the step's, else an updated green
    service keeps its own, else the service definition's (ECS: 1)."""
    if plan.desired is not None:
        return plan.desired
    if green is not None:
        return int(green.get("desiredCount") or 0)
    return int((plan.requests.service_definition or {}).get("desiredCount", 1))


async def _clear_slot(ecs: EcsClient, aas: AutoScalingClient, log: UnitLog,
                      describer: ServiceDescriber, params: BlueGreenCreateParams,
                      plan: Plan) -> dict[str, Any] | None:
    """Empty the new service's slot (or keep it for an update); the green service kept."""
    decision, new_name = plan.decision, plan.decision.new_service
    if decision.draining is not None:
        log.info(f"An existing non-blue version Service with name {new_name} is draining, "
                 "waiting for it to reach inactive state")
        await wait_inactive(describer, log, new_name, poll_interval=params.poll_interval,
                            give_up_after=params.steady_state_timeout)
    green = plan.services.get(new_name) if decision.green is not None else None
    if green is None:
        return None
    await autoscaling.remove(aas, log, params.cluster, new_name)
    log.info("")
    if params.update_green_service:
        return green
    log.info(f"Deleting existing non-blue version Service: {new_name}")
    await delete_service(ecs, describer, log, cluster=params.cluster, name=new_name,
                         poll_interval=params.poll_interval,
                         give_up_after=params.steady_state_timeout)
    log.info(f"Deleted non-blue version Service: {new_name}")
    log.info("")
    return None


async def _deploy_green(ecs: EcsClient, log: UnitLog, params: BlueGreenCreateParams,
                        plan: Plan, arn: str,
                        green: dict[str, Any] | None) -> tuple[dict[str, Any], str]:
    """Update the kept green service, or create the new one: (service, verb)."""
    new_name = plan.decision.new_service
    request, lines = bg_plan.green_request(
        plan.requests.service_definition or {}, cluster=params.cluster, name=new_name,
        arn=arn, desired=plan.desired, update=green is not None)
    for line in lines:
        log.info(line)
    if green is None:
        with aws_errors(f"CreateService {new_name}"):
            return (await ecs.create_service(**request))["service"], "Created"
    with aws_errors(f"UpdateService {new_name}"):
        service: dict[str, Any] = (await ecs.update_service(**request))["service"]
    await set_version_tag(ecs, log, green, GREEN)
    return service, "Updated"


async def _green_autoscaling(aas: AutoScalingClient, log: UnitLog,
                             params: BlueGreenCreateParams, plan: Plan) -> None:
    data, new_name = plan.data, plan.decision.new_service
    if data.same_target_group and data.old_service_name:
        log.info("The prod and stage target groups are the same, so autoscaling is removed "
                 f"from the old service {data.old_service_name} now")
        with aws_errors(f"Removing the autoscaling of service {data.old_service_name}"):
            await autoscaling.remove(aas, log, params.cluster, data.old_service_name)
        log.info("")
    if data.auto_scaling_in_swap_step:
        log.info(f"Autoscaling is attached to service {new_name} in the swap step")
    else:
        with aws_errors(f"Attaching autoscaling to service {new_name}"):
            await autoscaling.attach(aas, log, new_name, plan.scalable_targets,
                                     plan.scaling_policies)


# --------------------------------------------------------------------------- swap


def _route(data: dict[str, Any], role: str) -> elb.Route:
    return elb.Route(role=role, listener_arn=str(data["listenerArn"]),
                     rule_arn=data.get("ruleArn"), is_default=bool(data.get("isDefault")),
                     actions=tuple(data.get("actions") or []),
                     target_group_arn=str(data["targetGroupArn"]))


async def blue_green_swap(ctx: TaskContext[BlueGreenSwapParams]) -> dict[str, Any]:
    params = ctx.params
    async with (ecs_step(ctx, swapped=False) as step,
                ctx.log.unit("Swap Target Groups") as log):
        data = params.blue_green
        if data is None:
            raise TaskFailed("blueGreen is empty: the create step did not record its "
                             "state (it failed before), so there is nothing to swap")
        ctx.output.update(newServiceName=data.new_service_name,
                          oldServiceName=data.old_service_name)
        ecs, elbv2, aas = await step.ecs(), await step.elbv2(), await step.autoscaling()
        await _swap(ctx, ecs, elbv2, aas, log, params, data)
    return dict(ctx.output)


async def _point(elbv2: Elbv2Client, log: UnitLog, route: elb.Route, target_group: str,
                 which: str) -> None:
    live = await elb.current_actions(elbv2, route)
    log.info(f"Modifying ELB {route.role} Listener to Forward requests to Target group "
             f"associated with {which} Service\n,TargetGroup: {target_group}")
    log.info(elb.describe_change(route, target_group))
    await elb.set_actions(elbv2, route, elb.forward_to(live, target_group))
    log.info(f"Successfully updated {route.role} Listener")
    log.info("")


async def _swap(ctx: TaskContext, ecs: EcsClient, elbv2: Elbv2Client,
                aas: AutoScalingClient, log: UnitLog, params: BlueGreenSwapParams,
                data: BlueGreenData) -> None:
    names = [n for n in (data.new_service_name, data.old_service_name) if n]
    services = await describe_services(ecs, params.cluster, names)
    plan = bg_plan.plan_swap(data, services,
                             do_not_downsize=params.do_not_downsize_old_service)
    if plan.swap_routes:
        await _point(elbv2, log, _route(data.prod, "Prod"), data.stage_target_group_arn, "new")
        await _point(elbv2, log, _route(data.stage, "Stage"), data.prod_target_group_arn,
                     "old")
    else:
        log.info(f"The prod and stage listeners forward to the same Target Group "
                 f"{data.prod_target_group_arn}: there are no target groups to swap")
        log.info("")
    ctx.output.update(swapped=True, prodTargetGroupArn=data.stage_target_group_arn,
                      stageTargetGroupArn=data.prod_target_group_arn)
    log.info(f"Updating tag of new service: {data.new_service_name}")
    await set_version_tag(ecs, log, plan.new, BLUE)
    log.info("Successfully updated tag")
    log.info("")
    if plan.old_warning is not None:
        log.warn(plan.old_warning)
    elif plan.old is not None:
        await _retire_old(ecs, aas, log, params, plan, plan.old)
    if plan.attach_new_autoscaling:
        with aws_errors(f"Attaching autoscaling to service {data.new_service_name}"):
            await autoscaling.attach(aas, log, data.new_service_name, data.scalable_targets,
                                     data.scaling_policies)
        log.info("")
    log.info("Swapping Successful.")


async def _retire_old(ecs: EcsClient, aas: AutoScalingClient, log: UnitLog,
                      params: BlueGreenSwapParams, plan: bg_plan.SwapPlan,
                      old: dict[str, Any]) -> None:
    """Tag the old service GREEN, take its autoscaling off and downsize it (kept)."""
    name = old["serviceName"]
    log.info(f"Updating tag of old service: {name}")
    await set_version_tag(ecs, log, old, GREEN)
    log.info("Successfully updated tag")
    log.info("")
    if plan.remove_old_autoscaling:
        with aws_errors(f"Removing the autoscaling of service {name}"):
            await autoscaling.remove(aas, log, params.cluster, name)
        log.info("")
    if plan.downsize_old:
        log.info(f"Downsizing old service {name} to 0 (it is kept, not deleted)")
        with aws_errors(f"UpdateService {name}"):
            await ecs.update_service(cluster=params.cluster, service=name, desiredCount=0)
        log.info(f"Successfully downsized old service {name}")
    else:
        log.info(bg_plan.keep_old_line(old))
    log.info("")


# --------------------------------------------------------------------------- rollback


async def blue_green_rollback(ctx: TaskContext[BlueGreenRollbackParams]) -> dict[str, Any]:
    params = ctx.params
    async with ecs_step(ctx, rolledBack=False) as step, ctx.log.unit("Rollback") as log:
        data = params.blue_green
        if data is None:
            log.info("There is no blue/green data: the create step failed before it "
                     "changed anything. Nothing to roll back.")
            return dict(ctx.output)
        ctx.output.update(newServiceName=data.new_service_name,
                          oldServiceName=data.old_service_name)
        ecs, elbv2, aas = await step.ecs(), await step.elbv2(), await step.autoscaling()
        async with step.describer(ecs) as describer:
            await _rollback(ctx, ecs, elbv2, aas, log, describer, params, data)
    return dict(ctx.output)


async def _rollback(ctx: TaskContext, ecs: EcsClient, elbv2: Elbv2Client,
                    aas: AutoScalingClient, log: UnitLog,
                    describer: ServiceDescriber, params: BlueGreenRollbackParams,
                    data: BlueGreenData) -> None:
    names = [n for n in (data.new_service_name, data.old_service_name) if n]
    services = await describe_services(ecs, params.cluster, names)
    new = services.get(data.new_service_name)
    old = services.get(data.old_service_name or "")
    prod, stage = _route(data.prod, "Prod"), _route(data.stage, "Stage")
    prod_now = elb.forward_target(await elb.current_actions(elbv2, prod))
    swapped = (not data.same_target_group and prod_now == data.stage_target_group_arn) or (
        new is not None and ServiceView.of(new).version == BLUE)
    _guard_rollback(log, data, new, old, swapped=swapped,
                    new_targets=await _live_targets(aas, params.cluster, new),
                    old_targets=await _live_targets(aas, params.cluster, old))
    log.info("The swap step " + ("had moved production to the new service"
                                 if swapped else "had not run") + ".")
    if data.old_service_name:
        await _scale_old_back(ecs, log, describer, params, data, old)
    for route in (prod, stage):
        await _restore_route(elbv2, log, route)
    log.info("")
    if old is not None:
        await set_version_tag(ecs, log, old, BLUE)
    if data.task_definition_arn is None:
        log.info(f"This deployment did not get as far as deploying service "
                 f"{data.new_service_name}, so it is left as it is")
    elif new is not None and status_of(new) == "ACTIVE":
        await _retire_new(ecs, aas, log, describer, params, data, new,
                          downsize=swapped and old is not None)
    if old is not None:
        with aws_errors(f"Restoring the autoscaling of service {old['serviceName']}"):
            await autoscaling.remove(aas, log, params.cluster, old["serviceName"])
            log.info("")
            await autoscaling.attach(aas, log, old["serviceName"], data.old_scalable_targets,
                                     data.old_scaling_policies)
        log.info("")
    ctx.output["rolledBack"] = True
    log.info("Rollback Successful.")


async def _live_targets(aas: AutoScalingClient, cluster: str,
                        service: dict[str, Any] | None) -> list[dict[str, Any]] | None:
    """An ACTIVE service's scalable targets (None for any other: nothing to judge)."""
    if service is None or status_of(service) != "ACTIVE":
        return None
    name = service["serviceName"]
    with aws_errors(f"Reading the autoscaling of service {name}"):
        return await autoscaling.scalable_targets(aas, cluster, name)


def _guard_rollback(log: UnitLog, data: BlueGreenData, new: dict[str, Any] | None,
                    old: dict[str, Any] | None, *, swapped: bool,
                    new_targets: list[dict[str, Any]] | None = None,
                    old_targets: list[dict[str, Any]] | None = None) -> None:
    """Refuse (nothing written) when someone deployed since: the new service runs another
    task definition than this deployment's, the old one another than it ran (a later
    deployment replaced it in its slot), either one's desired count or autoscaling is
    not what this deployment left (bg_guard), or production moved without it."""
    new_left = bg_guard.new_service(data, swapped=swapped)
    if new_left is None:
        if swapped:
            raise TaskFailed(
                f"The prod listener forwards to {data.stage_target_group_arn}, but this "
                f"deployment never deployed service {data.new_service_name}: someone "
                "deployed since; refusing to roll back over it. Deploy the version you "
                "want instead.")
    else:
        check_untouched(new, new_left,
                        new_targets if bg_guard.checks_new_scaling(data) else None)
    old_left = bg_guard.old_service(data)
    if old_left is not None:
        check_untouched(old, old_left, old_targets)
    log.info("The services are as this deployment left them")


async def _scale_old_back(ecs: EcsClient, log: UnitLog, describer: ServiceDescriber,
                          params: BlueGreenRollbackParams, data: BlueGreenData,
                          old: dict[str, Any] | None) -> None:
    if old is None or status_of(old) != "ACTIVE":
        raise TaskFailed(f"The old service {data.old_service_name} is {status_of(old)}, "
                         "so production cannot be given back to it. Deploy the previous "
                         "version again.")
    wanted = data.old_desired_count or 0
    if int(old.get("desiredCount") or 0) >= wanted:
        return
    log.info(f"Updating Old Service {old['serviceName']} with task definition "
             f"{old.get('taskDefinition')} and desired count {wanted}")
    started = datetime.now(UTC)
    with aws_errors(f"UpdateService {old['serviceName']}"):
        scaled = (await ecs.update_service(cluster=params.cluster, service=old["serviceName"],
                                           desiredCount=wanted))["service"]
    await watch_deployment(describer, ecs, log, params, scaled,
                           str(old.get("taskDefinition")), started=started)
    log.info("")


async def _restore_route(elbv2: Elbv2Client, log: UnitLog, route: elb.Route) -> None:
    live = await elb.current_actions(elbv2, route)
    if live == list(route.actions):
        log.info(f"{route.role} Listener already forwards to Target Group "
                 f"{route.target_group_arn}")
        return
    log.info(f"Restoring ELB {route.role} Listener to forward requests to TargetGroup: "
             f"{route.target_group_arn}")
    log.info(elb.describe_change(route, route.target_group_arn))
    await elb.set_actions(elbv2, route, list(route.actions))
    log.info(f"Successfully restored {route.role} Listener")


async def _retire_new(ecs: EcsClient, aas: AutoScalingClient, log: UnitLog,
                      describer: ServiceDescriber,
                      params: BlueGreenRollbackParams, data: BlueGreenData,
                      new: dict[str, Any], *, downsize: bool) -> None:
    """Take the new service out: downsized when it had taken production (the old one is
    scaled back up first), else deleted."""
    name = data.new_service_name
    await set_version_tag(ecs, log, new, GREEN)
    log.info("")
    with aws_errors(f"Removing the autoscaling of service {name}"):
        await autoscaling.remove(aas, log, params.cluster, name)
    log.info("")
    if downsize:
        log.info(f"Downsizing new service {name} to 0")
        with aws_errors(f"UpdateService {name}"):
            await ecs.update_service(cluster=params.cluster, service=name, desiredCount=0)
    else:
        log.info(f"Deleting service {name}: "
                 + ("this deployment replaced it" if data.new_service_existed
                    else "it did not exist before this deployment"))
        await delete_service(ecs, describer, log, cluster=params.cluster, name=name,
                             poll_interval=params.poll_interval,
                             give_up_after=params.steady_state_timeout)
        log.info(f"Deleted new service {name}")
    log.info("")


# --------------------------------------------------------------------------- registry

_CREATE_OUTPUTS = {
    "blueGreen": "everything the swap and rollback steps need; pass it on as "
                 "blueGreen: <+execution.steps.ID.output.blueGreen>",
    "newServiceName": "the stage service this step deployed (<serviceName>__1 or __2)",
    "newServiceArn": "its ARN",
    "oldServiceName": "the blue service that serves production (null on a first deployment)",
    "serviceName": "the service definition's serviceName",
    "taskDefinitionArn": "ARN of the task definition the new service runs",
    "deploymentId": "id of the new service's deployment (ecs-svc/...)",
    "loadBalancerArn": "ARN of the load balancer",
    "prodListenerArn": "prod listener", "prodListenerRuleArn": "prod rule (or default rule)",
    "stageListenerArn": "stage listener",
    "stageListenerRuleArn": "stage rule (or default rule)",
    "prodTargetGroupArn": "target group the prod listener forwarded to before the swap",
    "stageTargetGroupArn": "target group of the new service",
    "cluster": "cluster", "region": "AWS region",
}


def register(registry: TaskRegistry) -> None:
    registry.register(TaskType(
        name="ecs.blue_green_create_service",
        handler=blue_green_create_service,
        summary="Deploy the new version as the green (stage) service behind the stage "
                "listener's target group, after checking listeners, ports and the blue/green "
                "state of the existing services.",
        params_model=BlueGreenCreateParams,
        outputs=_CREATE_OUTPUTS,
        units=("Fetch Manifests", "Prepare Rollback Data", "Deploy"),
    ))
    registry.register(TaskType(
        name="ecs.blue_green_swap_target_groups",
        handler=blue_green_swap,
        summary="Swap the prod and stage listeners' target groups, re-tag both services "
                "and downsize the old one to 0.",
        params_model=BlueGreenSwapParams,
        outputs={"swapped": "true once the listeners point at the new target groups",
                 "newServiceName": "the service now tagged BLUE",
                 "oldServiceName": "the service now tagged GREEN (downsized)",
                 "prodTargetGroupArn": "target group the prod listener forwards to now",
                 "stageTargetGroupArn": "target group the stage listener forwards to now",
                 "cluster": "cluster", "region": "AWS region"},
        units=("Swap Target Groups",),
    ))
    registry.register(TaskType(
        name="ecs.blue_green_rollback",
        handler=blue_green_rollback,
        summary="Undo a blue/green create (and swap): restore the old service's count, the "
                "listeners, tags and autoscaling; scale down or delete the new service.",
        params_model=BlueGreenRollbackParams,
        outputs={"rolledBack": "true when the rollback ran",
                 "newServiceName": "the service that was rolled back",
                 "oldServiceName": "the service that serves production again",
                 "cluster": "cluster", "region": "AWS region"},
        units=("Rollback",),
    ))
