"""ECS task types: rolling deploy and rollback, canary, blue/green and run task."""

from __future__ import annotations

from agent.context import TaskRegistry, TaskType

_OUTPUTS = {
    "taskDefinitionArn": "ARN of the task definition the service now runs",
    "serviceName": "name of the ECS service",
    "serviceArn": "ARN of the ECS service",
    "cluster": "cluster the service runs in",
    "region": "AWS region",
    "deploymentId": "id of the ECS deployment this step started (ecs-svc/...)",
}


def register(registry: TaskRegistry) -> None:
    from tasks.ecs import bluegreen, canary, runtask

    _register_rolling(registry)
    canary.register(registry)
    bluegreen.register(registry)
    runtask.register(registry)


def _register_rolling(registry: TaskRegistry) -> None:
    from tasks.ecs.params import RollingDeployParams, RollingRollbackParams
    from tasks.ecs.rolling import rolling_deploy, rolling_rollback

    registry.register(TaskType(
        name="ecs.rolling_deploy",
        handler=rolling_deploy,
        summary="Register the task definition, create or update the ECS service, wait "
                "until the deployment it started completes, then attach autoscaling.",
        params_model=RollingDeployParams,
        outputs={**_OUTPUTS, "rollbackData": (
            "what ecs.rolling_rollback needs: {existed, serviceName, taskDefinitionArn, "
            "taskDefinition, desiredCount, scalableTargets, scalingPolicies, serviceArn}, "
            "captured before any change")},
        units=("Fetch Manifests", "Prepare Rollback Data", "Deploy"),
    ))
    registry.register(TaskType(
        name="ecs.rolling_rollback",
        handler=rolling_rollback,
        summary="Undo ecs.rolling_deploy from its rollbackData: restore the task "
                "definition (registered again if it was deregistered since), desired "
                "count and autoscaling, or delete the service it created.",
        params_model=RollingRollbackParams,
        outputs={**_OUTPUTS, "rolledBack": "true when something was restored or deleted"},
        units=("Rollback",),
    ))
