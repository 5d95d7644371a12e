"""The CloudFormation provisioner steps: create (or update) a stack and wait for it,
delete one, and roll one back to what it was before this execution.

A stack's events are printed as they happen, oldest first, each once; a stack that ends
anywhere but ``*_COMPLETE`` (or that rolled back) fails the step with the failed
resources' reasons. The create step's outputs are the stack's outputs, so later steps
(and the infrastructure) can use ``<+execution.steps.ID.output.cluster_name>``."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from agent.context import TaskContext, TaskFailed, UnitLog
from tasks.aws.clients import aws_session
from tasks.aws.ports import CloudFormationClient
from tasks.aws_validate import describe_aws_error
from tasks.cloudformation.params import (
    CreateStackParams,
    DeleteStackParams,
    RollbackStackParams,
    StackParams,
)
from tasks.manifests.sources import fetch

_GONE = "DELETE_COMPLETE"
# A stack that rolled back its own creation cannot be updated, only deleted.
_DEAD = "ROLLBACK_COMPLETE"


def _failed(status: str) -> bool:
    return status.endswith("_FAILED") or status.endswith("ROLLBACK_COMPLETE")


async def _describe(cfn: CloudFormationClient, name: str) -> dict[str, Any] | None:
    try:
        stacks = (await cfn.describe_stacks(StackName=name))["Stacks"]
    except ClientError as exc:
        if "does not exist" in str(exc):
            return None
        raise
    return stacks[0] if stacks else None


async def _new_events(cfn: CloudFormationClient, stack_id: str,
                      seen: set[str]) -> list[dict[str, Any]]:
    events = (await cfn.describe_stack_events(StackName=stack_id))["StackEvents"]
    fresh = [e for e in events if e["EventId"] not in seen]
    seen.update(e["EventId"] for e in fresh)
    return list(reversed(fresh))  # the API answers newest first


def _print(log: UnitLog, event: dict[str, Any]) -> None:
    reason = event.get("ResourceStatusReason")
    log.aws_event(source="cloudformation", event_id=event["EventId"],
                  created_at=event["Timestamp"],
                  message=(f"{event['LogicalResourceId']} ({event['ResourceType']}) "
                           f"{event['ResourceStatus']}" + (f": {reason}" if reason else "")))


async def _wait(cfn: CloudFormationClient, stack_id: str, seen: set[str], log: UnitLog,
                poll: float) -> dict[str, Any]:
    """Print events until the stack stops changing; return its last description."""
    while True:
        for event in await _new_events(cfn, stack_id, seen):
            _print(log, event)
        stack = await _describe(cfn, stack_id)
        if stack is None:
            return {"StackStatus": _GONE}
        status = stack["StackStatus"]
        if not status.endswith("_IN_PROGRESS"):
            for event in await _new_events(cfn, stack_id, seen):
                _print(log, event)
            return stack
        await asyncio.sleep(poll)


def _failure(stack: dict[str, Any], events: list[dict[str, Any]]) -> TaskFailed:
    reasons = [f"{e['LogicalResourceId']}: {e.get('ResourceStatusReason', '')}"
               for e in events if e["ResourceStatus"].endswith("_FAILED")]
    because = ("; ".join(reasons) if reasons else stack.get("StackStatusReason")
               or "see the stack events above")
    return TaskFailed(f"Stack {stack.get('StackName')} ended {stack['StackStatus']}: "
                      f"{because}")


async def _events_of(cfn: CloudFormationClient, stack_id: str) -> list[dict[str, Any]]:
    return list((await cfn.describe_stack_events(StackName=stack_id))["StackEvents"])


async def _template_args(params: CreateStackParams, ctx: TaskContext,
                         log: UnitLog) -> dict[str, Any]:
    if params.template_url is not None:
        return {"TemplateURL": params.template_url}
    if isinstance(params.template, str):
        return {"TemplateBody": params.template}
    assert params.template is not None
    files = await fetch(params.template, ctx, None, log, kind="CloudFormation template")
    body = files[0].text if files[0].text is not None else json.dumps(files[0].content)
    return {"TemplateBody": body.decode() if isinstance(body, bytes) else body}


async def _previous(cfn: CloudFormationClient, stack: dict[str, Any]) -> dict[str, Any]:
    """What an update replaces: the template and parameters to restore on rollback. A
    NoEcho parameter reads ``****``, so it is restored with UsePreviousValue."""
    body = (await cfn.get_template(StackName=stack["StackId"]))["TemplateBody"]
    return {"templateBody": body if isinstance(body, str) else json.dumps(body),
            "parameters": [{"ParameterKey": p["ParameterKey"],
                            "ParameterValue": p.get("ParameterValue", "")}
                           for p in stack.get("Parameters") or []]}


def _stack_args(params: CreateStackParams) -> dict[str, Any]:
    args: dict[str, Any] = {
        "StackName": params.stack_name,
        "Parameters": [{"ParameterKey": k, "ParameterValue": v}
                       for k, v in params.parameters.items()],
        "Capabilities": params.capabilities,
        "Tags": [{"Key": k, "Value": v} for k, v in params.tags.items()]}
    if params.role_arn:
        args["RoleARN"] = params.role_arn
    return args


def _client_error(exc: Exception, what: str) -> TaskFailed:
    return TaskFailed(f"CloudFormation {what} failed: {describe_aws_error(exc)}")


async def _outputs(ctx: TaskContext, stack: dict[str, Any], log: UnitLog) -> None:
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs") or []}
    ctx.output.update(outputs, stackId=stack["StackId"], stackStatus=stack["StackStatus"])
    for key, value in outputs.items():
        log.info(f"Output {key} = {value}")


async def _start(cfn: CloudFormationClient, params: CreateStackParams, args: dict[str, Any],
                 ctx: TaskContext, log: UnitLog) -> tuple[str, set[str]] | None:
    """Create or update; None when an update finds nothing to change."""
    existing = await _describe(cfn, params.stack_name)
    if existing is not None and existing["StackStatus"] == _DEAD:
        log.info(f"Stack {params.stack_name} is {_DEAD} (its creation failed earlier); "
                 "deleting it before creating it again")
        seen = {e["EventId"] for e in await _events_of(cfn, existing["StackId"])}
        await cfn.delete_stack(StackName=existing["StackId"])
        await _wait(cfn, existing["StackId"], seen, log, params.poll_interval)
        existing = None
    if existing is None:
        ctx.output["rollbackData"] = {"stackName": params.stack_name, "created": True}
        log.info(f"Creating stack {params.stack_name}")
        stack_id = (await cfn.create_stack(**args))["StackId"]
        return stack_id, set()
    ctx.output["rollbackData"] = {"stackName": params.stack_name, "created": False,
                                  **await _previous(cfn, existing)}
    seen = {e["EventId"] for e in await _events_of(cfn, existing["StackId"])}
    log.info(f"Stack {params.stack_name} exists ({existing['StackStatus']}); updating it")
    try:
        await cfn.update_stack(**args)
    except ClientError as exc:
        if "No updates are to be performed" not in str(exc):
            raise
        log.info("No updates are to be performed: the stack already matches")
        return None
    return existing["StackId"], seen


async def create_stack(ctx: TaskContext[CreateStackParams]) -> dict[str, Any]:
    params = ctx.params
    async with aws_session(ctx, params.credentials, params.region) as aws:
        cfn = await aws.cloudformation()
        async with ctx.log.unit("Create Stack") as log:
            try:
                args = {**_stack_args(params), **await _template_args(params, ctx, log)}
                started = await _start(cfn, params, args, ctx, log)
                if started is None:
                    stack = await _describe(cfn, params.stack_name)
                else:
                    stack = await _wait(cfn, started[0], started[1], log, params.poll_interval)
                assert stack is not None
                if _failed(stack["StackStatus"]) or stack["StackStatus"] == _GONE:
                    raise _failure(stack, await _events_of(cfn, stack.get("StackId", "")))
            except (ClientError, BotoCoreError) as exc:
                raise _client_error(exc, "CreateStack/UpdateStack") from exc
            await _outputs(ctx, stack, log)
            log.info(f"Stack {params.stack_name} is {stack['StackStatus']}")
    return ctx.output


async def _delete(cfn: CloudFormationClient, params: StackParams, log: UnitLog) -> None:
    stack = await _describe(cfn, params.stack_name)
    if stack is None:
        log.info(f"Stack {params.stack_name} does not exist: nothing to delete")
        return
    seen = {e["EventId"] for e in await _events_of(cfn, stack["StackId"])}
    log.info(f"Deleting stack {params.stack_name}")
    await cfn.delete_stack(StackName=stack["StackId"])
    final = await _wait(cfn, stack["StackId"], seen, log, params.poll_interval)
    if final["StackStatus"] != _GONE:
        raise _failure(final, await _events_of(cfn, stack["StackId"]))
    log.info(f"Stack {params.stack_name} deleted")


async def delete_stack(ctx: TaskContext[DeleteStackParams]) -> dict[str, Any]:
    params = ctx.params
    async with aws_session(ctx, params.credentials, params.region) as aws:
        cfn = await aws.cloudformation()
        async with ctx.log.unit("Delete Stack") as log:
            try:
                await _delete(cfn, params, log)
            except (ClientError, BotoCoreError) as exc:
                raise _client_error(exc, "DeleteStack") from exc
    return ctx.output


async def _restore(cfn: CloudFormationClient, params: RollbackStackParams, data: dict[str, Any],
                   log: UnitLog) -> None:
    stack = await _describe(cfn, params.stack_name)
    if stack is None:
        raise TaskFailed(f"Stack {params.stack_name} no longer exists; there is nothing to "
                         "restore the saved template to")
    seen = {e["EventId"] for e in await _events_of(cfn, stack["StackId"])}
    log.info(f"Restoring stack {params.stack_name} to its template and parameters from "
             "before this execution")
    parameters = [{"ParameterKey": p["ParameterKey"], "UsePreviousValue": True}
                  if p["ParameterValue"] == "****" else p for p in data["parameters"]]
    try:
        await cfn.update_stack(StackName=stack["StackId"], TemplateBody=data["templateBody"],
                               Parameters=parameters, Capabilities=[
                                   "CAPABILITY_IAM", "CAPABILITY_NAMED_IAM",
                                   "CAPABILITY_AUTO_EXPAND"])
    except ClientError as exc:
        if "No updates are to be performed" in str(exc):
            log.info("No updates are to be performed: the stack is already as it was")
            return
        raise
    final = await _wait(cfn, stack["StackId"], seen, log, params.poll_interval)
    if _failed(final["StackStatus"]):
        raise _failure(final, await _events_of(cfn, stack["StackId"]))


async def rollback_stack(ctx: TaskContext[RollbackStackParams]) -> dict[str, Any]:
    params = ctx.params
    data = params.rollback_data
    async with aws_session(ctx, params.credentials, params.region) as aws:
        cfn = await aws.cloudformation()
        async with ctx.log.unit("Rollback Stack") as log:
            try:
                if data.get("created"):
                    log.info(f"Stack {params.stack_name} did not exist before this "
                             "execution: deleting it")
                    await _delete(cfn, params, log)
                else:
                    await _restore(cfn, params, data, log)
            except (ClientError, BotoCoreError) as exc:
                raise _client_error(exc, "rollback") from exc
    return ctx.output
