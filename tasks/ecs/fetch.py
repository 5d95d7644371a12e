"""Loading a step's manifests and checking it has the definitions every ECS step needs."""

from __future__ import annotations

from agent.context import TaskContext, TaskFailed, UnitLog
from tasks.ecs.params import EcsTarget
from tasks.manifests import AwsClients, ManifestError, Manifests, ManifestSpecs, load_manifests


async def fetch_step_manifests(ctx: TaskContext, aws: AwsClients, log: UnitLog, params: EcsTarget,
                               specs: ManifestSpecs, step: str, *,
                               needs_service: bool = True) -> Manifests:
    """The manifests, with a task definition (request or ARN) and, when ``needs_service``,
    a service definition; ``step`` names the step in the errors ("a rolling deploy")."""
    try:
        manifests = await load_manifests(specs, ctx, aws, log, region=params.region,
                                         cluster=params.cluster)
    except ManifestError as exc:
        raise TaskFailed(str(exc)) from None
    if needs_service and (manifests.service_definition is None
                          or manifests.service_name is None):
        raise TaskFailed(f"manifests.serviceDefinition is required for {step}: give the "
                         "CreateService request (with serviceName) of the service")
    if manifests.task_definition is None and manifests.task_definition_arn is None:
        raise TaskFailed(f"manifests.taskDefinition is required for {step}: give a "
                         "RegisterTaskDefinition request or {taskDefinitionArn: ARN}")
    return manifests
