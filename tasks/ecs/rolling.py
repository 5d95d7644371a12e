"""``ecs.rolling_deploy`` and ``ecs.rolling_rollback``.

Deploy: register the task definition (or take a given ARN and force a new deployment),
create the service when it is missing or INACTIVE (after waiting out DRAINING), else
take its autoscaling off and update it; then watch the deployment this step created
until it completes, and attach the manifests' scalable targets and scaling policies.
Everything needed to undo it is in ``output.rollbackData`` before the first change.

Rollback: put the captured task definition, desired count (the larger of the saved and
live counts) and autoscaling back, or delete the service when the deploy created it.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from agent.context import TaskContext, TaskFailed, UnitLog
from tasks.aws.clients import aws_session
from tasks.ecs import autoscaling
from tasks.ecs.describe import shared_describer
from tasks.ecs.errors import aws_errors
from tasks.ecs.params import RollbackData, RollingDeployParams, RollingRollbackParams
from tasks.ecs.service import (
    describe_one,
    primary_deployment,
    status_of,
    wait_until_inactive,
)
from tasks.ecs.watcher import (
    ServiceDescriber,
    Target,
    WatchState,
    event_ids,
    wait_for_steady_state,
)
from tasks.manifests import ManifestError, Manifests, load_manifests, update_service_request

# Events stamped this much before our start are still read: AWS and local clocks drift.
CLOCK_SKEW = timedelta(minutes=1)


def _fail(ctx: TaskContext, exc: TaskFailed) -> TaskFailed:
    return TaskFailed(str(exc), output=dict(ctx.output))


async def rolling_deploy(ctx: TaskContext) -> dict[str, Any]:
    params: RollingDeployParams = ctx.params
    out = ctx.output
    out.update(cluster=params.cluster, region=params.region)
    try:
        async with aws_session(ctx, params.credentials, params.region) as aws:
            async with ctx.log.unit("Fetch Manifests") as log:
                requests = await _fetch(ctx, aws, log, params)
            name = str(requests.service_name)
            out["serviceName"] = name
            async with ctx.log.unit("Prepare Rollback Data") as log:
                with aws_errors("Connecting to AWS"):  # assuming a role can fail here
                    ecs = await aws.client("ecs")
                    aas = await aws.client("application-autoscaling")
                current = await _prepare_rollback(ctx, ecs, aas, log, params, name)
            async with ctx.log.unit("Deploy") as log, shared_describer(
                    ecs, credentials=params.credentials, region=params.region,
                    cluster=params.cluster) as describer:
                await _deploy(ctx, ecs, aas, log, describer, params, requests, current)
    except TaskFailed as exc:
        raise _fail(ctx, exc) from exc
    return dict(out)


async def _fetch(ctx: TaskContext, aws: Any, log: UnitLog,
                 params: RollingDeployParams) -> Manifests:
    try:
        manifests = await load_manifests(params.manifests, ctx, aws, log,
                                         region=params.region, cluster=params.cluster)
    except ManifestError as exc:
        raise TaskFailed(str(exc)) from exc
    if manifests.service_definition is None or manifests.service_name is None:
        raise TaskFailed("manifests.serviceDefinition is required for a rolling deploy: "
                         "give the CreateService request (with serviceName) of the service")
    if manifests.task_definition is None and manifests.task_definition_arn is None:
        raise TaskFailed("manifests.taskDefinition is required for a rolling deploy: give "
                         "a RegisterTaskDefinition request or {taskDefinitionArn: ARN}")
    return manifests


async def _prepare_rollback(ctx: TaskContext, ecs: Any, aas: Any, log: UnitLog,
                            params: RollingDeployParams, name: str) -> dict[str, Any] | None:
    current = await describe_one(ecs, params.cluster, name)
    status = status_of(current)
    data: dict[str, Any] = {"existed": status == "ACTIVE", "serviceName": name,
                            "taskDefinitionArn": None, "desiredCount": None,
                            "scalableTargets": [], "scalingPolicies": [], "serviceArn": None}
    if current is not None and status == "ACTIVE":
        with aws_errors(f"Reading the autoscaling of service {name}"):
            targets, policies = await autoscaling.capture(aas, params.cluster, name)
        data.update(taskDefinitionArn=current.get("taskDefinition"),
                    desiredCount=current.get("desiredCount"), scalableTargets=targets,
                    scalingPolicies=policies, serviceArn=current.get("serviceArn"))
        log.info(f"Service {name} exists: task definition {data['taskDefinitionArn']}, "
                 f"desired count {data['desiredCount']}, {len(targets)} scalable target(s), "
                 f"{len(policies)} scaling policy(ies) captured for rollback")
    else:
        log.info(f"Service {name} is {status} in cluster {params.cluster}: a rollback "
                 "will delete the service this deployment creates")
    ctx.output["rollbackData"] = data
    return current


async def _register_task_definition(ctx: TaskContext, ecs: Any, log: UnitLog,
                                    requests: Manifests) -> str:
    if requests.task_definition_arn is not None:
        arn = requests.task_definition_arn
        with aws_errors(f"DescribeTaskDefinition {arn}"):
            await ecs.describe_task_definition(taskDefinition=arn)
        log.info(f"Using Task Definition {arn}; forcing a new deployment")
        return arn
    assert requests.task_definition is not None
    family = requests.task_definition.get("family", "?")
    log.info(f"Creating Task Definition with family {family}")
    with aws_errors(f"RegisterTaskDefinition for family {family}"):
        answer = await ecs.register_task_definition(**requests.task_definition)
    td = answer["taskDefinition"]
    arn = str(td["taskDefinitionArn"])
    log.info(f"Created Task Definition {td['family']}:{td['revision']} with Arn {arn}..")
    log.info("")
    return arn


async def _deploy(ctx: TaskContext, ecs: Any, aas: Any, log: UnitLog,
                  describer: ServiceDescriber, params: RollingDeployParams,
                  requests: Manifests, current: dict[str, Any] | None) -> None:
    out = ctx.output
    name = str(requests.service_name)
    service_request = dict(requests.service_definition or {})
    arn = await _register_task_definition(ctx, ecs, log, requests)
    out["taskDefinitionArn"] = arn
    started = datetime.now(UTC)

    if status_of(current) == "DRAINING":
        log.info(f"Service {name} is DRAINING; it can be created again once INACTIVE")
        await wait_until_inactive(describer, log, name, poll_interval=params.poll_interval,
                                  give_up_after=params.steady_state_timeout)
    if current is not None and status_of(current) == "ACTIVE":
        await autoscaling.remove(aas, log, params.cluster, name)
        desired = (current.get("desiredCount") if params.same_as_already_running_instances
                   else service_request.get("desiredCount", current.get("desiredCount")))
        force = params.force_new_deployment or requests.task_definition_arn is not None
        request, dropped = update_service_request(service_request)
        if dropped:
            log.info(f"UpdateService cannot change {', '.join(dropped)}; the service keeps "
                     "what it was created with")
        request.update(cluster=params.cluster, service=name, taskDefinition=arn,
                       desiredCount=desired, forceNewDeployment=force)
        log.info(f"Updating Service {name} with task definition {arn} and desired count "
                 f"{desired}")
        with aws_errors(f"UpdateService {name}"):
            service = (await ecs.update_service(**request))["service"]
        verb = "Updated"
    else:
        request = service_request
        request.update(cluster=params.cluster, taskDefinition=arn)
        log.info(f"Creating Service {name} with task definition {arn} and desired count "
                 f"{request.get('desiredCount', 1)}")
        with aws_errors(f"CreateService {name}"):
            service = (await ecs.create_service(**request))["service"]
        verb = "Created"

    deployment = primary_deployment(service) or {}
    out["serviceArn"] = service.get("serviceArn")
    out["deploymentId"] = deployment.get("id")
    target = Target(name, deployment.get("id"), arn)
    state = WatchState(seen=event_ids(service))
    await wait_for_steady_state(
        describer=describer, ecs=ecs, log=log, cluster=params.cluster, target=target,
        state=state, poll_interval=params.poll_interval,
        give_up_after=params.steady_state_timeout,
        not_before=started - CLOCK_SKEW)
    log.info(f"{verb} Service {name} with Arn {service.get('serviceArn')}")
    log.info("")
    with aws_errors(f"Attaching autoscaling to service {name}"):
        await autoscaling.attach(aas, log, name, requests.scalable_targets,
                                 requests.scaling_policies)
    log.info("")
    log.info(" Deployment Successful.")


# --------------------------------------------------------------------------- rollback


async def rolling_rollback(ctx: TaskContext) -> dict[str, Any]:
    params: RollingRollbackParams = ctx.params
    out = ctx.output
    out.update(cluster=params.cluster, region=params.region, rolledBack=False)
    try:
        async with ctx.log.unit("Rollback") as log:
            data = params.rollback_data
            if data is None:
                log.info("There is no rollback data: the deploy step failed before it "
                         "changed anything. Nothing to roll back.")
                return dict(out)
            out["serviceName"] = data.service_name
            async with aws_session(ctx, params.credentials, params.region) as aws:
                with aws_errors("Connecting to AWS"):  # assuming a role can fail here
                    ecs = await aws.client("ecs")
                    aas = await aws.client("application-autoscaling")
                async with shared_describer(ecs, credentials=params.credentials,
                                            region=params.region,
                                            cluster=params.cluster) as describer:
                    if data.existed:
                        await _restore(ctx, ecs, aas, log, describer, params, data)
                    else:
                        await _delete_created(ctx, ecs, aas, log, describer, params, data)
    except TaskFailed as exc:
        raise _fail(ctx, exc) from exc
    return dict(out)


async def _restore(ctx: TaskContext, ecs: Any, aas: Any, log: UnitLog,
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
    started = datetime.now(UTC)
    await autoscaling.remove(aas, log, params.cluster, name)
    live = int(current.get("desiredCount") or 0)
    desired = max(data.desired_count or 0, live)
    log.info(f"Rolling back Service {name} to task definition {data.task_definition_arn} "
             f"and desired count {desired}")
    with aws_errors(f"UpdateService {name}"):
        service = (await ecs.update_service(
            cluster=params.cluster, service=name, taskDefinition=data.task_definition_arn,
            desiredCount=desired))["service"]
    deployment = primary_deployment(service) or {}
    ctx.output.update(taskDefinitionArn=data.task_definition_arn,
                      serviceArn=service.get("serviceArn"), deploymentId=deployment.get("id"))
    target = Target(name, deployment.get("id"), data.task_definition_arn)
    await wait_for_steady_state(
        describer=describer, ecs=ecs, log=log, cluster=params.cluster, target=target,
        state=WatchState(seen=event_ids(service)), poll_interval=params.poll_interval,
        give_up_after=params.steady_state_timeout, not_before=started - CLOCK_SKEW)
    log.info("")
    with aws_errors(f"Restoring the autoscaling of service {name}"):
        await autoscaling.attach(aas, log, name, data.scalable_targets, data.scaling_policies)
    ctx.output["rolledBack"] = True
    log.info("")
    log.info(f" Rolled back Service {name} to {data.task_definition_arn}.")


async def _delete_created(ctx: TaskContext, ecs: Any, aas: Any, log: UnitLog,
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
        await autoscaling.remove(aas, log, params.cluster, name)
        log.info(f"Deleting Service {name}, which the failed deployment created..")
        with aws_errors(f"DeleteService {name}"):
            await ecs.delete_service(cluster=params.cluster, service=name, force=True)
    await wait_until_inactive(describer, log, name, poll_interval=params.poll_interval,
                              give_up_after=params.steady_state_timeout)
    ctx.output["rolledBack"] = True
    log.info("")
    log.info(f" Deleted Service {name}.")
