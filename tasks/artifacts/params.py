"""Params of the artifact look-up task types: where the image lives and which tag."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from tasks.aws.credentials import Credentials, InheritCredentials

DOCKER_HUB = "https://registry-1.docker.io"


class _Params(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class ArtifactSource(_Params):
    type: Literal["dockerRegistry", "ecr"] = Field(
        description="dockerRegistry: any Docker Registry v2 (Docker Hub by default); "
                    "ecr: Amazon ECR with the task's AWS credentials")
    registry: str = Field(default=DOCKER_HUB, pattern=r"^https?://",
                          description="dockerRegistry: the registry's URL")
    image: str | None = Field(default=None, min_length=1,
                              description="dockerRegistry: the repository, e.g. library/nginx")
    repository: str | None = Field(default=None, min_length=1,
                                   description="ecr: the repository name")
    region: str | None = Field(default=None, description="ecr: its Region (default: the "
                                                         "infrastructure's)")
    username: str | None = Field(default=None, description="dockerRegistry: user name")
    password_secret: str | None = Field(
        default=None, alias="passwordSecret",
        description="dockerRegistry: the name of the task secret holding the password")

    @model_validator(mode="after")
    def _names_its_repository(self) -> ArtifactSource:
        if self.type == "dockerRegistry" and not self.image:
            raise ValueError("a dockerRegistry source needs image (e.g. library/nginx)")
        if self.type == "ecr" and not self.repository:
            raise ValueError("an ecr source needs repository")
        if (self.username is None) != (self.password_secret is None):
            raise ValueError("give username and passwordSecret together (or neither, for "
                             "anonymous access)")
        return self

    @property
    def name(self) -> str:
        return str(self.image or self.repository)


class ArtifactTagsParams(_Params):
    source: ArtifactSource
    region: str | None = Field(default=None, description="offered by the infrastructure")
    credentials: Credentials = Field(default_factory=InheritCredentials,
                                     description="ecr: connector credentials")
    tag_regex: str | None = Field(default=None, alias="tagRegex",
                                  description="only tags matching this (whole tag)")


class ArtifactResolveParams(ArtifactTagsParams):
    tag: str | None = Field(default=None, min_length=1, description="a fixed tag; checked "
                                                                    "to exist")

    @model_validator(mode="after")
    def _one_tag(self) -> ArtifactResolveParams:
        if (self.tag is None) == (self.tag_regex is None):
            raise ValueError("give exactly one of tag (a fixed tag) or tagRegex (the newest "
                             "matching tag)")
        return self
