"""The task definition a rollback restores, even after someone deregistered it.

ECS refuses CreateService/UpdateService naming an INACTIVE (deregistered) revision, so a
rollback to a revision deregistered since its deploy would fail. The deploy therefore
keeps the revision's definition (as a RegisterTaskDefinition request) in its rollback
data, and the rollback registers it again when the revision is no longer ACTIVE. Older
rollback data without the definition falls back to describing the revision, which ECS
keeps describable after deregistration (but not after DeleteTaskDefinitions).
"""

from __future__ import annotations

from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from agent.context import TaskFailed, UnitLog
from tasks.aws.ports import EcsClient, TaskDefinitionAnswer
from tasks.ecs.errors import aws_errors, unthrottled
from tasks.ecs.rollback_guard import short_name

REGISTER = "RegisterTaskDefinition"


def register_request(ecs: EcsClient, described: dict[str, Any],
                     tags: list[dict[str, str]] | None = None) -> dict[str, Any]:
    """The RegisterTaskDefinition request that makes ``described`` (a DescribeTaskDefinition
    ``taskDefinition``) again: only the fields that request takes, per botocore's model, so
    read-only ones (revision, status, registeredAt ...) are left out."""
    members = ecs.meta.service_model.operation_model(REGISTER).input_shape.members
    request = {k: v for k, v in described.items() if k in members and v is not None}
    if tags:
        request["tags"] = tags
    return request


async def capture(ecs: EcsClient, log: UnitLog, arn: str) -> dict[str, Any] | None:
    """The definition of ``arn`` as a RegisterTaskDefinition request, or None (with a
    warning) when it cannot be read: the deploy goes on, only that fallback is lost."""
    try:
        answer = await _describe(ecs, arn)
    except (ClientError, BotoCoreError) as exc:
        log.warn(f"Could not read task definition {short_name(arn)} ({_reason(exc)}): if "
                 "it is deregistered before a rollback, the rollback cannot register it "
                 "again")
        return None
    return register_request(ecs, answer["taskDefinition"], answer.get("tags"))


async def _describe(ecs: EcsClient, arn: str) -> TaskDefinitionAnswer:
    # A throttled read would cost the rollback its fallback: wait for the bucket instead.
    return await unthrottled(
        lambda: ecs.describe_task_definition(taskDefinition=arn, include=["TAGS"]))


def _reason(exc: Exception) -> str:
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        return f"{error.get('Code', 'Error')}: {error.get('Message', exc)}"
    return str(exc)


async def _status(ecs: EcsClient, arn: str) -> tuple[str, TaskDefinitionAnswer | None]:
    """(status, DescribeTaskDefinition answer); ("MISSING", None) when ECS no longer
    knows the revision."""
    try:
        answer = await _describe(ecs, arn)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") == "ClientException":
            return "MISSING", None  # "Unable to describe task definition."
        raise
    return str(answer["taskDefinition"].get("status", "ACTIVE")), answer


async def usable(ecs: EcsClient, log: UnitLog, arn: str, saved: dict[str, Any] | None, *,
                 running: str | None) -> str | None:
    """The task definition to give the service in the rollback's UpdateService: ``arn``
    while it is ACTIVE; None (name none) when the service already runs it, since ECS keeps
    a deregistered revision running but refuses it by name; else ``arn`` registered again
    from ``saved`` (or from what ECS still describes of it), saying so."""
    with aws_errors(f"DescribeTaskDefinition {arn}"):
        status, answer = await _status(ecs, arn)
    if status == "ACTIVE":
        return arn
    if running == arn:
        log.info(f"Revision {short_name(arn)} was deregistered, but the service's PRIMARY "
                 "deployment still runs it (ECS keeps it running): keeping it")
        return None
    request = saved
    if request is None and answer is not None:
        request = register_request(ecs, answer["taskDefinition"], answer.get("tags"))
    if request is None:
        raise TaskFailed(f"Revision {short_name(arn)} is {status} and the rollback data "
                         "does not hold its definition (it was saved by an older delegate), "
                         "so it cannot be registered again. Deploy the version you want "
                         "instead.")
    with aws_errors(f"RegisterTaskDefinition for family {request.get('family', '?')}"):
        registered = (await ecs.register_task_definition(**request))["taskDefinition"]
    again = str(registered["taskDefinitionArn"])
    log.info(f"Revision {short_name(arn)} was deregistered; registered it again as "
             f"{short_name(again)}")
    return again
