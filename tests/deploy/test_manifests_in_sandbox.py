"""The delegate's own ECS install, as far as the sandbox goes: deploy/ecs/task-definition.json
registers and deploy/ecs/service-definition.json creates a service that reaches a steady
state, with only the placeholders a user must fill (cluster, subnets, security group)
replaced."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from testkit.sandbox_fixture import Aws, eventually

DEPLOY = Path(__file__).resolve().parents[2] / "deploy" / "ecs"


def _definitions(aws: Aws) -> tuple[dict[str, Any], dict[str, Any]]:
    task_definition = json.loads((DEPLOY / "task-definition.json").read_text())
    service = json.loads((DEPLOY / "service-definition.json").read_text())
    service["cluster"] = aws.cluster
    vpc = service["networkConfiguration"]["awsvpcConfiguration"]
    vpc["subnets"] = list(aws.subnets)
    vpc["securityGroups"] = [aws.security_group]
    return task_definition, service


def test_the_delegates_own_service_reaches_steady_state(aws: Aws) -> None:
    ecs = aws.client("ecs")
    task_definition, service = _definitions(aws)

    registered = ecs.register_task_definition(**task_definition)["taskDefinition"]
    assert registered["family"] == service["taskDefinition"] == "ecs-delegate"
    (container,) = registered["containerDefinitions"]
    assert container["secrets"] == task_definition["containerDefinitions"][0]["secrets"]
    assert container["stopTimeout"] == 120
    assert container["readonlyRootFilesystem"] is True

    created = ecs.create_service(**service)["service"]
    assert created["serviceName"] == "ecs-delegate"
    assert created["launchType"] == "FARGATE"

    def steady() -> dict[str, Any] | None:
        (found,) = ecs.describe_services(cluster=aws.cluster,
                                         services=["ecs-delegate"])["services"]
        primary = found["deployments"][0]
        messages = [e["message"] for e in found["events"]]
        done = (len(found["deployments"]) == 1 and primary["rolloutState"] == "COMPLETED"
                and found["runningCount"] == service["desiredCount"]
                and any("has reached a steady state" in m for m in messages))
        return found if done else None

    found = eventually(steady, timeout=30)
    assert found["taskDefinition"] == registered["taskDefinitionArn"]
    (task_arn,) = ecs.list_tasks(cluster=aws.cluster, serviceName="ecs-delegate",
                                 desiredStatus="RUNNING")["taskArns"]
    (task,) = ecs.describe_tasks(cluster=aws.cluster, tasks=[task_arn])["tasks"]
    assert task["lastStatus"] == "RUNNING"
    assert task["taskDefinitionArn"] == registered["taskDefinitionArn"]
