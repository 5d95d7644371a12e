"""Registering the step's task definition (or checking the ARN the manifests name)."""

from __future__ import annotations

from typing import Any

from agent.context import TaskFailed, UnitLog
from tasks.aws.ports import EcsClient
from tasks.ecs.errors import aws_errors
from tasks.manifests import Manifests


async def register_task_definition(ecs: EcsClient, log: UnitLog, requests: Manifests, *,
                                   given_arn_note: str = "") -> str:
    """Register the manifests' task definition, or check the ARN they name (and say so,
    followed by ``given_arn_note``)."""
    if requests.task_definition_arn is not None:
        arn = requests.task_definition_arn
        with aws_errors(f"DescribeTaskDefinition {arn}"):
            await ecs.describe_task_definition(taskDefinition=arn)
        log.info(f"Using Task Definition {arn}{given_arn_note}")
        return arn
    assert requests.task_definition is not None
    family = requests.task_definition.get("family", "?")
    log.info(f"Creating Task Definition with family {family}")
    with aws_errors(f"RegisterTaskDefinition for family {family}"):
        answer = await ecs.register_task_definition(**requests.task_definition)
    td = answer["taskDefinition"]
    arn = str(td["taskDefinitionArn"])
    log.info(f"Created Task Definition {td['family']}:{td['revision']} with Arn {arn}..")
    return arn


async def container_definitions(ecs: EcsClient, requests: Manifests) -> list[dict[str, Any]]:
    """The containers of the task definition the step will run, before registering it."""
    if requests.task_definition is not None:
        return list(requests.task_definition.get("containerDefinitions") or [])
    arn = requests.task_definition_arn
    if arn is None:  # the manifest checks (fetch.py) come first; this says so if not
        raise TaskFailed("the manifests give neither a taskDefinition nor a "
                         "taskDefinitionArn; add one of them")
    with aws_errors(f"DescribeTaskDefinition {arn}"):
        answer = await ecs.describe_task_definition(taskDefinition=arn)
    return list(answer["taskDefinition"].get("containerDefinitions") or [])
