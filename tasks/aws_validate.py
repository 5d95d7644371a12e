"""``aws.validate_connector``: can this delegate reach AWS with these credentials?

Calls STS GetCallerIdentity and ECS ListClusters and returns the account and the
cluster ARNs. Proves the whole path: manager -> delegate -> AWS -> result.
"""

from __future__ import annotations

from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from pydantic import BaseModel, ConfigDict, Field

from agent.context import TaskContext, TaskFailed, TaskRegistry, TaskType
from tasks.aws.clients import aws_session
from tasks.aws.credentials import Credentials, InheritCredentials


class ValidateConnectorParams(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    region: str = Field(min_length=1, description="AWS region, e.g. us-east-1")
    credentials: Credentials = Field(default_factory=InheritCredentials,
                                     description="connector credentials")


def describe_aws_error(exc: Exception) -> str:
    if isinstance(exc, ClientError):
        err = exc.response.get("Error", {})
        return f"{err.get('Code', 'Error')}: {err.get('Message', str(exc))}"
    return str(exc)


async def validate_connector(ctx: TaskContext[ValidateConnectorParams]) -> dict[str, Any]:
    params = ctx.params
    async with aws_session(ctx, params.credentials, params.region) as aws:
        async with ctx.log.unit("Validate Credentials") as log:
            log.info(f"Checking credentials ({params.credentials.type}) in {params.region}")
            try:
                sts = await aws.sts()
                ident = await sts.get_caller_identity()
            except (ClientError, BotoCoreError) as exc:
                raise TaskFailed(
                    f"AWS refused the credentials: {describe_aws_error(exc)}. Check the "
                    "connector's access key, secret and role."
                ) from exc
            ctx.output.update(account=ident["Account"], arn=ident["Arn"])
            log.info(f"Authenticated as {ident['Arn']} (account {ident['Account']})")
        async with ctx.log.unit("List Clusters") as log:
            try:
                ecs = await aws.ecs()
                clusters: list[str] = []
                paginator = ecs.get_paginator("list_clusters")
                async for page in paginator.paginate():
                    clusters.extend(page.get("clusterArns", []))
            except (ClientError, BotoCoreError) as exc:
                raise TaskFailed(
                    f"ECS ListClusters failed: {describe_aws_error(exc)}. The connector "
                    "needs ecs:ListClusters (see docs/permissions.md)."
                ) from exc
            ctx.output["clusters"] = clusters
            log.info(f"Found {len(clusters)} cluster(s) in {params.region}")
            for arn in clusters:
                log.info(f"- {arn}")
    return ctx.output


def register(registry: TaskRegistry) -> None:
    registry.register(TaskType(
        name="aws.validate_connector",
        handler=validate_connector,
        summary="Check that the delegate reaches AWS with the given credentials.",
        params_model=ValidateConnectorParams,
        outputs={"account": "AWS account id of the credentials",
                 "arn": "ARN of the caller", "clusters": "ECS cluster ARNs in the region"},
        units=("Validate Credentials", "List Clusters"),
    ))
