"""Look-ups of ECR, for choosing an artifact: repositories, and the images of one."""

from __future__ import annotations

from agent.context import TaskContext
from tasks.aws.clients import AwsSessionFactory
from tasks.lookups.common import Items, iso, paged
from tasks.lookups.params import LookupParams, RepositoryParams


async def repositories(ctx: TaskContext[LookupParams], aws: AwsSessionFactory
                       ) -> tuple[Items, bool]:
    ecr = await aws.ecr()
    found, truncated = await paged(ecr.get_paginator("describe_repositories"),
                                   "repositories", "ECR DescribeRepositories")
    items = [{"name": r.get("repositoryName"), "uri": r.get("repositoryUri"),
              "arn": r.get("repositoryArn"), "createdAt": iso(r.get("createdAt"))}
             for r in found]
    return sorted(items, key=lambda i: str(i["name"])), truncated


async def images(ctx: TaskContext[RepositoryParams], aws: AwsSessionFactory
                 ) -> tuple[Items, bool]:
    ecr = await aws.ecr()
    repository = ctx.params.repository
    found, truncated = await paged(ecr.get_paginator("describe_images"), "imageDetails",
                                   f"ECR DescribeImages of repository {repository}",
                                   repositoryName=repository)
    items = [{"tags": sorted(i.get("imageTags") or []), "digest": i.get("imageDigest"),
              "pushedAt": iso(i.get("imagePushedAt")),
              "sizeBytes": i.get("imageSizeInBytes"), "repository": repository}
             for i in found]
    # Newest first: the image a user most likely wants to deploy.
    return sorted(items, key=lambda i: str(i["pushedAt"] or ""), reverse=True), truncated
