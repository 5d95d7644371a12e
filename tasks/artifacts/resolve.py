"""The artifact task types: ``artifact.resolve`` (the image an execution deploys: a fixed
tag checked to exist, or the newest tag matching ``tagRegex``, pinned to its digest) and
``artifact.tags`` (the tags a delegate sees, for ``delegate artifacts tags``).

The output's ``image`` names the digest (``repo@sha256:...``), so every later step —
and a step run again after a newer tag was pushed — deploys exactly that image."""

from __future__ import annotations

import os
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, Protocol, cast
from urllib.parse import urlsplit

from agent.context import TaskContext, TaskFailed
from tasks.artifacts.choose import NoSuchTag, Tag, by_version, fixed, newest
from tasks.artifacts.ecr import EcrLookup
from tasks.artifacts.params import (
    DOCKER_HUB,
    ArtifactResolveParams,
    ArtifactTagsParams,
)
from tasks.artifacts.registry_v2 import Login, RegistryClient, RegistryError
from tasks.aws.clients import aws_session
from tasks.aws.ports import EcrClient


class Lookup(Protocol):
    base: str

    async def tag_list(self) -> list[Tag]: ...

    async def digest(self, tag: str) -> str: ...


class _Registry:
    def __init__(self, client: RegistryClient, base: str) -> None:
        self.client = client
        self.base = base

    async def tag_list(self) -> list[Tag]:
        return await self.client.tag_list()

    async def digest(self, tag: str) -> str:
        return await self.client.digest(tag)


def _login(ctx: TaskContext[Any], params: ArtifactTagsParams) -> Login | None:
    src = params.source
    if src.username is None or src.password_secret is None:
        return None
    password = ctx.secrets.get(src.password_secret)
    if password is None:
        raise TaskFailed(f"source.passwordSecret: the task has no secret named "
                         f"{src.password_secret!r}; add it to the execution's secrets")
    return Login(src.username, password)


def _image_base(registry: str, image: str) -> str:
    if registry.rstrip("/") == DOCKER_HUB:
        return image
    return f"{urlsplit(registry).netloc}/{image}"


@asynccontextmanager
async def open_lookup(ctx: TaskContext[Any], params: ArtifactTagsParams
                      ) -> AsyncIterator[Lookup]:
    src = params.source
    if src.type == "ecr":
        # Last, the delegate's own Region (its task's AWS_REGION), as the AWS SDKs do.
        region = src.region or params.region or os.environ.get("AWS_REGION") or \
            os.environ.get("AWS_DEFAULT_REGION")
        if not region:
            raise TaskFailed("source.region: an ecr source needs a Region (or an "
                             "infrastructure that sets one, or AWS_REGION on the delegate)")
        async with aws_session(ctx, params.credentials, region) as aws:
            yield EcrLookup(cast(EcrClient, await aws.client("ecr")), src.name, region)
        return
    async with RegistryClient(src.registry, src.name, _login(ctx, params)) as client:
        yield _Registry(client, _image_base(src.registry, src.name))


async def resolve_artifact(ctx: TaskContext[ArtifactResolveParams]) -> dict[str, Any]:
    params = ctx.params
    src = params.source
    async with ctx.log.unit("Resolve Artifact") as log:
        try:
            async with open_lookup(ctx, params) as lookup:
                tags = await lookup.tag_list()
                log.info(f"{src.type} {src.name}: {len(tags)} tag(s)")
                if params.tag is not None:
                    chosen = fixed(tags, params.tag, src.name)
                else:
                    chosen = newest(tags, str(params.tag_regex), src.name)
                    log.info(f"tagRegex {params.tag_regex!r}: newest matching tag is "
                             f"{chosen.name}")
                digest = chosen.digest or await lookup.digest(chosen.name)
                image = f"{lookup.base}@{digest}"
        except (NoSuchTag, RegistryError) as exc:
            raise TaskFailed(str(exc)) from None
        log.info(f"{src.name}:{chosen.name} is {digest}: deploying {image}")
    return {"image": image, "tag": chosen.name, "digest": digest,
            "imagePath": lookup.base, "type": src.type}


async def list_tags(ctx: TaskContext[ArtifactTagsParams]) -> dict[str, Any]:
    params = ctx.params
    async with ctx.log.unit("List Tags") as log:
        try:
            async with open_lookup(ctx, params) as lookup:
                tags = await lookup.tag_list()
        except RegistryError as exc:
            raise TaskFailed(str(exc)) from None
        if params.tag_regex:
            try:
                tags = [t for t in tags if re.fullmatch(params.tag_regex, t.name)]
            except re.error as exc:
                raise TaskFailed(f"tagRegex {params.tag_regex!r} is not a regular "
                                 f"expression: {exc}") from None
        if all(t.pushed_at is not None for t in tags):
            ordered = [t.name for t in sorted(tags, key=lambda t: (t.pushed_at or 0, t.name))]
        else:
            ordered = by_version([t.name for t in tags])
        log.info(f"{params.source.name}: {len(ordered)} tag(s)")
    digests = {t.name: t.digest for t in tags if t.digest}
    return {"tags": ordered, "digests": digests, "imagePath": lookup.base}
