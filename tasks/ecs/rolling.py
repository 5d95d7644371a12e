"""``ecs.rolling_deploy`` and ``ecs.rolling_rollback``.

Deploy: register the task definition (or take a given ARN and force a new deployment),
create the service when it is missing or INACTIVE (after waiting out DRAINING), else
take its autoscaling off and update it; then watch the deployment this step created
until it completes, and attach the manifests' scalable targets and scaling policies.
Everything needed to undo it is in ``output.rollbackData`` before the first change.

Rollback: put the captured task definition (registered again from the rollback data when
someone deregistered it since: tasks/ecs/saved_revision), desired count (the larger of
the saved and live counts) and autoscaling back, or delete the service when the deploy
created it;
but first check that the service is still as the deploy left it (rollback_guard), so a
rollback never writes over someone's newer deployment.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from agent.context import TaskContext, TaskFailed, UnitLog
from tasks.aws.ports import AutoScalingClient, EcsClient
from tasks.ecs import autoscaling, saved_revision
from tasks.ecs.errors import aws_errors
from tasks.ecs.params import RollingDeployParams, RollingRollbackParams
from tasks.ecs.rollback_data import CURRENT_VERSION, RollbackData
from tasks.ecs.rollback_guard import check as check_untouched
from tasks.ecs.service import (
    deployment_id,
    describe_one,
    primary_deployment,
    status_of,
    watch_deployment,
)
from tasks.ecs.step import ecs_step
from tasks.ecs.taskdef import register_task_definition
from tasks.ecs.teardown import wait_inactive
from tasks.ecs.watcher import ServiceDescriber
from tasks.manifests import Manifests, update_service_request


async def rolling_deploy(ctx: TaskContext[RollingDeployParams]) -> dict[str, Any]:
    params = ctx.params
    async with ecs_step(ctx) as step:
        async with ctx.log.unit("Fetch Manifests") as log:
            requests = await step.fetch_manifests(log, params.manifests, "a rolling deploy")
        name = str(requests.service_name)
        ctx.output["serviceName"] = name
        async with ctx.log.unit("Prepare Rollback Data") as log:
            ecs, aas = await step.ecs(), await step.autoscaling()
            current, data = await _prepare_rollback(ctx, ecs, aas, log, params, name)
        async with ctx.log.unit("Deploy") as log, step.describer(ecs) as describer:
            await _deploy(ctx, ecs, aas, log, describer, params, requests, current, data)
    return dict(ctx.output)


async def _prepare_rollback(ctx: TaskContext, ecs: EcsClient, aas: AutoScalingClient, log: UnitLog,
                            params: RollingDeployParams,
                            name: str) -> tuple[dict[str, Any] | None, RollbackData]:
    current = await describe_one(ecs, params.cluster, name)
    status = status_of(current)
    data = RollbackData.model_validate({"version": CURRENT_VERSION,
                                        "existed": status == "ACTIVE", "serviceName": name})
    if current is not None and status == "ACTIVE":
        with aws_errors(f"Reading the autoscaling of service {name}"):
            targets, policies = await autoscaling.capture(aas, params.cluster, name)
        running = current.get("taskDefinition")
        saved = None if not running else await saved_revision.capture(ecs, log, running)
        data = data.model_copy(update={
            "task_definition_arn": running, "task_definition": saved,
            "desired_count": current.get("desiredCount"), "scalable_targets": targets,
            "scaling_policies": policies, "service_arn": current.get("serviceArn")})
        log.info(f"Service {name} exists: task definition {data.task_definition_arn}, "
                 f"desired count {data.desired_count}, {len(targets)} scalable target(s), "
                 f"{len(policies)} scaling policy(ies) captured for rollback")
    else:
        log.info(f"Service {name} is {status} in cluster {params.cluster}: a rollback "
                 "will delete the service this deployment creates")
    ctx.output["rollbackData"] = data.dump()
    return current, data


def _record_left(ctx: TaskContext, data: RollbackData, **left: Any) -> RollbackData:
    """Add what this deployment leaves to its rollback data, for the rollback's guard;
    recorded before the change too, since the step can fail right after it."""
    data = data.model_copy(update=left)
    ctx.output["rollbackData"] = data.dump()
    return data


async def _deploy(ctx: TaskContext, ecs: EcsClient, aas: AutoScalingClient, log: UnitLog,
                  describer: ServiceDescriber, params: RollingDeployParams,
                  requests: Manifests, current: dict[str, Any] | None,
                  data: RollbackData) -> None:
    out = ctx.output
    name = str(requests.service_name)
    # A given ARN changes nothing ECS can see, so only a forced deployment replaces tasks.
    arn = await register_task_definition(ecs, log, requests,
                                         given_arn_note="; forcing a new deployment")
    if requests.task_definition_arn is None:
        log.info("")
    out["taskDefinitionArn"] = arn
    started = datetime.now(UTC)

    if status_of(current) == "DRAINING":
        log.info(f"Service {name} is DRAINING; it can be created again once INACTIVE")
        await wait_inactive(describer, log, name, poll_interval=params.poll_interval,
                            give_up_after=params.steady_state_timeout)
    if current is not None and status_of(current) == "ACTIVE":
        await autoscaling.remove(aas, log, params.cluster, name)
        request = _update_request(log, params, requests, current, arn)
        data = _record_left(ctx, data, deployed_task_definition_arn=arn,
                            deployed_desired_count=request["desiredCount"])
        log.info(f"Updating Service {name} with task definition {arn} and desired count "
                 f"{request['desiredCount']}")
        with aws_errors(f"UpdateService {name}"):
            service = (await ecs.update_service(**request))["service"]
        verb = "Updated"
    else:
        request = dict(requests.service_definition or {})
        request.update(cluster=params.cluster, taskDefinition=arn)
        data = _record_left(ctx, data, deployed_task_definition_arn=arn,
                            deployed_desired_count=request.get("desiredCount", 1))
        log.info(f"Creating Service {name} with task definition {arn} and desired count "
                 f"{request.get('desiredCount', 1)}")
        with aws_errors(f"CreateService {name}"):
            service = (await ecs.create_service(**request))["service"]
        verb = "Created"

    out.update(serviceArn=service.get("serviceArn"), deploymentId=deployment_id(service))
    data = _record_left(ctx, data, deployment_id=deployment_id(service))
    await watch_deployment(describer, ecs, log, params, service, arn, started=started)
    log.info(f"{verb} Service {name} with Arn {service.get('serviceArn')}")
    log.info("")
    with aws_errors(f"Attaching autoscaling to service {name}"):
        await autoscaling.attach(aas, log, name, requests.scalable_targets,
                                 requests.scaling_policies)
    _record_left(ctx, data, deployed_scalable_targets=requests.scalable_targets)
    log.info("")
    log.info(" Deployment Successful.")


def _update_request(log: UnitLog, params: RollingDeployParams, requests: Manifests,
                    current: dict[str, Any], arn: str) -> dict[str, Any]:
    """The UpdateService request for an ACTIVE service."""
    service_request = dict(requests.service_definition or {})
    desired = (current.get("desiredCount") if params.same_as_already_running_instances
               else service_request.get("desiredCount", current.get("desiredCount")))
    force = params.force_new_deployment or requests.task_definition_arn is not None
    request, dropped = update_service_request(service_request)
    if dropped:
        log.info(f"UpdateService cannot change {', '.join(dropped)}; the service keeps "
                 "what it was created with")
    request.update(cluster=params.cluster, service=str(requests.service_name),
                   taskDefinition=arn, desiredCount=desired, forceNewDeployment=force)
    return request


# --------------------------------------------------------------------------- rollback


async def rolling_rollback(ctx: TaskContext[RollingRollbackParams]) -> dict[str, Any]:
    params = ctx.params
    async with ecs_step(ctx, rolledBack=False) as step, ctx.log.unit("Rollback") as log:
        data = params.rollback_data
        if data is None:
            log.info("There is no rollback data: the deploy step failed before it "
                     "changed anything. Nothing to roll back.")
            return dict(ctx.output)
        ctx.output["serviceName"] = data.service_name
        ecs, aas = await step.ecs(), await step.autoscaling()
        async with step.describer(ecs) as describer:
            if data.existed:
                await _restore(ctx, ecs, aas, log, describer, params, data)
            else:
                await _delete_created(ctx, ecs, aas, log, describer, params, data)
    return dict(ctx.output)


async def _guard(aas: AutoScalingClient, log: UnitLog, cluster: str, current: dict[str, Any] | None,
                 data: RollbackData) -> None:
    """Refuse (TaskFailed, nothing written) unless the service is as the deploy left it:
    its PRIMARY deployment, desired count and autoscaling."""
    name = data.service_name
    if not data.knows_what_it_left:
        if data.existed:
            log.info(f"The rollback data (version {data.version}) does not say what the "
                     f"deployment left, so whether someone deployed service {name} since "
                     "cannot be checked")
            return
        raise TaskFailed(f"The rollback data of service {name} is version {data.version}, "
                         "which does not say what the deployment left, so deleting the "
                         "service could destroy a newer deployment; refusing. Delete it "
                         "by hand if it is this deployment's.")
    with aws_errors(f"Reading the autoscaling of service {name}"):
        live_targets = await autoscaling.scalable_targets(aas, cluster, name)
    check_untouched(current, data.left_behind(), live_targets)
    log.info(f"Service {name} is as this deployment left it")


async def _restore(ctx: TaskContext, ecs: EcsClient, aas: AutoScalingClient, log: UnitLog,
                   describer: ServiceDescriber, params: RollingRollbackParams,
                   data: RollbackData) -> None:
    name = data.service_name
    current = await describe_one(ecs, params.cluster, name)
    if current is None or status_of(current) != "ACTIVE":
        raise TaskFailed(f"Service {name} is {status_of(current)} in cluster "
                         f"{params.cluster}, so it cannot be rolled back to "
                         f"{data.task_definition_arn}; deploy it again")
    if data.task_definition_arn is None:
        raise TaskFailed(f"The rollback data of service {name} names no task definition; "
                         "it cannot be restored")
    await _guard(aas, log, params.cluster, current, data)
    # Someone may have deregistered the saved revision since: ECS refuses it by name.
    named = await saved_revision.usable(ecs, log, data.task_definition_arn,
                                        data.task_definition,
                                        running=_primary_task_definition(current))
    target = named or data.task_definition_arn
    started = datetime.now(UTC)
    await autoscaling.remove(aas, log, params.cluster, name)
    live = int(current.get("desiredCount") or 0)
    desired = max(data.desired_count or 0, live)
    log.info(f"Rolling back Service {name} to task definition {target} "
             f"and desired count {desired}")
    request: dict[str, Any] = dict(cluster=params.cluster, service=name, desiredCount=desired)
    if named is not None:
        request["taskDefinition"] = named
    with aws_errors(f"UpdateService {name}"):
        service = (await ecs.update_service(**request))["service"]
    ctx.output.update(taskDefinitionArn=target,
                      serviceArn=service.get("serviceArn"), deploymentId=deployment_id(service))
    await watch_deployment(describer, ecs, log, params, service, target, started=started)
    log.info("")
    with aws_errors(f"Restoring the autoscaling of service {name}"):
        await autoscaling.attach(aas, log, name, data.scalable_targets, data.scaling_policies)
    ctx.output["rolledBack"] = True
    log.info("")
    log.info(f" Rolled back Service {name} to {target}.")


def _primary_task_definition(service: dict[str, Any]) -> str | None:
    found = (primary_deployment(service) or {}).get("taskDefinition")
    return None if found is None else str(found)


async def _delete_created(ctx: TaskContext, ecs: EcsClient, aas: AutoScalingClient, log: UnitLog,
                          describer: ServiceDescriber, params: RollingRollbackParams,
                          data: RollbackData) -> None:
    name = data.service_name
    current = await describe_one(ecs, params.cluster, name)
    status = status_of(current)
    if status in {"MISSING", "INACTIVE"}:
        log.info(f"Service {name} did not exist before the deployment and is {status} "
                 "now: nothing to roll back.")
        return
    if status == "ACTIVE":
        await _guard(aas, log, params.cluster, current, data)
        await autoscaling.remove(aas, log, params.cluster, name)
        log.info(f"Deleting service {name}: it did not exist before this deployment")
        with aws_errors(f"DeleteService {name}"):
            await ecs.delete_service(cluster=params.cluster, service=name, force=True)
    await wait_inactive(describer, log, name, poll_interval=params.poll_interval,
                        give_up_after=params.steady_state_timeout)
    ctx.output["rolledBack"] = True
    log.info("")
    log.info(f" Deleted Service {name}.")
