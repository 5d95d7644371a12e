"""``ecs.canary_deploy`` and ``ecs.canary_delete``.

Deploy: the new version runs as ``<serviceName>Canary`` with one task, beside the
service it will replace (same service definition, so the same load balancers and service
registries); an existing canary service is deleted first. It is watched like a rolling
deployment. Autoscaling is not attached: a canary is one task by design.

Delete: force-delete the canary service, wait until it is INACTIVE, and say whether
anything was deleted (the canary step may have failed before creating it); but first
check that the canary is still the one its step made (its task definition, one task),
so a later deployment's canary is never deleted.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field

from agent.context import TaskContext, TaskRegistry, TaskType, UnitLog
from tasks.aws.ports import EcsClient
from tasks.ecs.errors import aws_errors
from tasks.ecs.params import EcsTarget
from tasks.ecs.rollback_guard import LeftBehind
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
from tasks.ecs.teardown import delete_service, wait_inactive
from tasks.ecs.watcher import ServiceDescriber
from tasks.manifests import Manifests, ManifestSpecs

CANARY_SUFFIX = "Canary"
CANARY_COUNT = 1


class CanaryDeployParams(EcsTarget):
    manifests: ManifestSpecs


class CanaryDeleteParams(EcsTarget):
    canary_service_name: str | None = Field(
        default=None, alias="canaryServiceName",
        description="the canary service, usually "
                    "<+execution.steps.canary.output.canaryServiceName>")
    task_definition_arn: str | None = Field(
        default=None, alias="taskDefinitionArn",
        description="the task definition the canary step deployed, usually "
                    "<+execution.steps.canary.output.taskDefinitionArn>: the delete is "
                    "refused when the canary service runs another (someone deployed since)")


def canary_name(service_name: str) -> str:
    return f"{service_name}{CANARY_SUFFIX}"


async def canary_deploy(ctx: TaskContext[CanaryDeployParams]) -> dict[str, Any]:
    params = ctx.params
    async with ecs_step(ctx) as step:
        async with ctx.log.unit("Fetch Manifests") as log:
            requests = await step.fetch_manifests(log, params.manifests, "a canary deploy")
        base = str(requests.service_name)
        name = canary_name(base)
        ctx.output.update(serviceName=base, canaryServiceName=name)
        ecs = await step.ecs()
        async with ctx.log.unit("Deploy") as log, step.describer(ecs) as describer:
            await _deploy(ctx, ecs, log, describer, params, requests, name)
    return dict(ctx.output)


async def _deploy(ctx: TaskContext, ecs: EcsClient, log: UnitLog,
                  describer: ServiceDescriber,
                  params: CanaryDeployParams, requests: Manifests, name: str) -> None:
    out = ctx.output
    arn = await register_task_definition(ecs, log, requests)
    out["taskDefinitionArn"] = arn
    current = await describe_one(ecs, params.cluster, name)
    status = status_of(current)
    if status == "ACTIVE":
        log.info(f"Deleting existing Canary Service {name}")
        await delete_service(ecs, describer, log, cluster=params.cluster, name=name,
                             poll_interval=params.poll_interval,
                             give_up_after=params.steady_state_timeout)
    elif status == "DRAINING":
        await wait_inactive(describer, log, name, poll_interval=params.poll_interval,
                            give_up_after=params.steady_state_timeout)
    # A new service: every event it has is about this deployment, so none is skipped.
    request = dict(requests.service_definition or {})
    request.update(cluster=params.cluster, serviceName=name, taskDefinition=arn,
                   desiredCount=CANARY_COUNT)
    log.info(f"Creating Service {name} with task definition {arn} and desired count "
             f"{CANARY_COUNT}")
    with aws_errors(f"CreateService {name}"):
        service = (await ecs.create_service(**request))["service"]
    out.update(serviceArn=service.get("serviceArn"), deploymentId=deployment_id(service))
    await watch_deployment(describer, ecs, log, params, service, arn, started=None)
    log.info(f"Created Service {name} with Arn {service.get('serviceArn')}")
    log.info("")
    log.info(" Deployment Successful.")


async def canary_delete(ctx: TaskContext[CanaryDeleteParams]) -> dict[str, Any]:
    params = ctx.params
    name = (params.canary_service_name or "").strip()
    async with (ecs_step(ctx, deleted=False) as step,
                ctx.log.unit("Delete Canary Service") as log):
        if not name:
            log.info("No canary service is named: the canary step did not get as far as "
                     "creating one. Nothing to delete.")
            return dict(ctx.output)
        ctx.output["canaryServiceName"] = name
        ecs = await step.ecs()
        async with step.describer(ecs) as describer:
            await _delete(ctx, ecs, log, describer, params, name)
    return dict(ctx.output)


async def _delete(ctx: TaskContext, ecs: EcsClient, log: UnitLog,
                  describer: ServiceDescriber,
                  params: CanaryDeleteParams, name: str) -> None:
    current = await describe_one(ecs, params.cluster, name)
    status = status_of(current)
    if status in {"MISSING", "INACTIVE"}:
        log.info(f"Canary service {name} is {status}: nothing to delete")
        return
    if status == "ACTIVE":
        _guard(log, current, params, name)
        await delete_service(ecs, describer, log, cluster=params.cluster, name=name,
                             poll_interval=params.poll_interval,
                             give_up_after=params.steady_state_timeout)
    else:
        await wait_inactive(describer, log, name, poll_interval=params.poll_interval,
                            give_up_after=params.steady_state_timeout)
    ctx.output["deleted"] = status == "ACTIVE"
    log.info(f"Canary service {name} deleted")


def _guard(log: UnitLog, current: dict[str, Any] | None, params: CanaryDeleteParams,
           name: str) -> None:
    """Refuse to delete a canary service that another deployment has put up since."""
    td = params.task_definition_arn
    if not td:
        log.info("taskDefinitionArn is not given, so only the canary's count is checked "
                 "before deleting it; pass <+execution.steps.canary.output."
                 "taskDefinitionArn> to check its task definition too")
        tds = (str(_primary_td(current)),)
    else:
        tds = (td,)
    check_untouched(current, LeftBehind(name, tds, desired_counts=(CANARY_COUNT,)))


def _primary_td(service: dict[str, Any] | None) -> str | None:
    return (primary_deployment(service or {}) or {}).get("taskDefinition") or \
        (service or {}).get("taskDefinition")


_DEPLOY_OUTPUTS = {
    "canaryServiceName": "name of the canary service (<serviceName>Canary)",
    "serviceName": "the service definition's serviceName (the service the canary precedes)",
    "taskDefinitionArn": "ARN of the task definition the canary runs",
    "serviceArn": "ARN of the canary service",
    "deploymentId": "id of the canary service's deployment (ecs-svc/...)",
    "cluster": "cluster", "region": "AWS region",
}


def register(registry: TaskRegistry) -> None:
    registry.register(TaskType(
        name="ecs.canary_deploy",
        handler=canary_deploy,
        summary="Deploy the new version as <serviceName>Canary with one task (an existing "
                "canary service is deleted first) and wait for its steady state.",
        params_model=CanaryDeployParams,
        outputs=_DEPLOY_OUTPUTS,
        units=("Fetch Manifests", "Deploy"),
    ))
    registry.register(TaskType(
        name="ecs.canary_delete",
        handler=canary_delete,
        summary="Force-delete the canary service and wait until it is INACTIVE.",
        params_model=CanaryDeleteParams,
        outputs={"deleted": "true when a canary service was deleted",
                 "canaryServiceName": "the canary service", "cluster": "cluster",
                 "region": "AWS region"},
        units=("Delete Canary Service",),
    ))
