"""Amazon ECR as an artifact source, with the task's AWS credentials: the tags of a
repository with their digests and push times (``ecr:DescribeImages``) and the
repository's URI (``ecr:DescribeRepositories``). Read-only."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from tasks.artifacts.choose import Tag
from tasks.artifacts.registry_v2 import RegistryError
from tasks.aws.ports import EcrClient


class EcrLookup:
    def __init__(self, ecr: EcrClient, repository: str, region: str) -> None:
        self.ecr = ecr
        self.repository = repository
        self.region = region
        self.base = ""
        self._tags: list[Tag] | None = None

    async def _call(self, what: str, coro: Any) -> Any:
        try:
            return await coro
        except ClientError as exc:
            err = exc.response.get("Error", {})
            raise RegistryError(f"ECR {self.repository} in {self.region}: could not {what}: "
                                f"{err.get('Code')}: {err.get('Message')}") from None
        except BotoCoreError as exc:
            raise RegistryError(f"ECR in {self.region}: could not {what}: {exc}") from None

    async def tag_list(self) -> list[Tag]:
        repos = await self._call("describe the repository", self.ecr.describe_repositories(
            repositoryNames=[self.repository]))
        self.base = repos["repositories"][0]["repositoryUri"]
        found: list[Tag] = await self._call("list its images", self._images())
        self._tags = found
        return found

    async def _images(self) -> list[Tag]:
        found: list[Tag] = []
        pages = self.ecr.get_paginator("describe_images").paginate(
            repositoryName=self.repository, filter={"tagStatus": "TAGGED"})
        async for page in pages:
            for image in page.get("imageDetails", []):
                pushed = image.get("imagePushedAt")
                for name in image.get("imageTags") or []:
                    found.append(Tag(name=name, digest=image["imageDigest"],
                                     pushed_at=pushed.timestamp() if pushed else None))
        return found

    async def digest(self, tag: str) -> str:
        for t in self._tags or await self.tag_list():
            if t.name == tag and t.digest:
                return t.digest
        raise RegistryError(f"ECR {self.repository}: tag {tag!r} has no digest")

