"""Small builders shared by the sandbox tests."""

from __future__ import annotations

from typing import Any

from testkit.sandbox_fixture import Aws, eventually


def register(ecs: Any, family: str, image: str = "nginx:1.27",
             environment: dict[str, str] | None = None, **container: Any) -> str:
    definition: dict[str, Any] = {"name": "app", "image": image, "essential": True, **container}
    if environment:
        definition["environment"] = [{"name": k, "value": v} for k, v in environment.items()]
    answer = ecs.register_task_definition(
        family=family,
        requiresCompatibilities=["FARGATE"],
        networkMode="awsvpc",
        cpu="256",
        memory="512",
        containerDefinitions=[definition],
    )
    return str(answer["taskDefinition"]["taskDefinitionArn"])


def create_service(aws: Aws, ecs: Any, name: str, task_definition: str, desired: int = 2,
                   **extra: Any) -> dict[str, Any]:
    answer = ecs.create_service(
        cluster=aws.cluster,
        serviceName=name,
        taskDefinition=task_definition,
        desiredCount=desired,
        launchType="FARGATE",
        networkConfiguration=aws.network_configuration,
        **extra,
    )
    service: dict[str, Any] = answer["service"]
    return service


def describe(aws: Aws, ecs: Any, name: str) -> dict[str, Any]:
    service: dict[str, Any] = ecs.describe_services(cluster=aws.cluster, services=[name])[
        "services"
    ][0]
    return service


def wait_completed(aws: Aws, ecs: Any, name: str, deployment_id: str,
                   timeout: float = 20.0) -> dict[str, Any]:
    """Until ``deployment_id`` is the only deployment, PRIMARY and COMPLETED."""

    def check() -> dict[str, Any] | None:
        service = describe(aws, ecs, name)
        deployments = service["deployments"]
        if (
            len(deployments) == 1
            and deployments[0]["id"] == deployment_id
            and deployments[0]["rolloutState"] == "COMPLETED"
            and service["runningCount"] == service["desiredCount"]
        ):
            return service
        return None

    return eventually(check, timeout)


def messages(service: dict[str, Any]) -> list[str]:
    """Event messages oldest first."""
    return [e["message"] for e in reversed(service["events"])]


def tasks(aws: Aws, ecs: Any, status: str = "RUNNING", **filters: Any) -> list[dict[str, Any]]:
    arns = ecs.list_tasks(cluster=aws.cluster, desiredStatus=status, **filters)["taskArns"]
    if not arns:
        return []
    found: list[dict[str, Any]] = ecs.describe_tasks(cluster=aws.cluster, tasks=arns)["tasks"]
    return found
