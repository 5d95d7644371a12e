"""Artifact sources: which image an execution deploys, looked up by a delegate (the
registry may be reachable only from inside the account). Docker Registry v2 (Docker
Hub or any other, anonymous or with a password) and Amazon ECR."""

from __future__ import annotations

from agent.context import TaskRegistry, TaskType


def register(registry: TaskRegistry) -> None:
    from tasks.artifacts.params import ArtifactResolveParams, ArtifactTagsParams
    from tasks.artifacts.resolve import list_tags, resolve_artifact

    registry.register(TaskType(
        name="artifact.resolve", handler=resolve_artifact,
        summary="Resolve an execution's artifact: a fixed tag checked to exist (a missing "
                "one fails naming the tags nearby) or the newest tag matching tagRegex, "
                "pinned to its digest.",
        params_model=ArtifactResolveParams,
        outputs={"image": "repository@digest: what <+artifact.image> deploys",
                 "tag": "the chosen tag", "digest": "its sha256 digest",
                 "imagePath": "the repository, without tag or digest",
                 "type": "dockerRegistry or ecr"},
        units=("Resolve Artifact",)))
    registry.register(TaskType(
        name="artifact.tags", handler=list_tags,
        summary="List the tags of an artifact source as this delegate sees them (oldest "
                "first: by push time on ECR, else by version).",
        params_model=ArtifactTagsParams,
        outputs={"tags": "the tags, oldest first", "digests": "tag -> digest, when known",
                 "imagePath": "the repository"},
        units=("List Tags",)))
