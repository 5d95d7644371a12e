"""Params of the CloudFormation provisioner steps."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from tasks.aws.credentials import Credentials, InheritCredentials
from tasks.manifests.sources import ManifestSource
from wire.durations import Duration


class StackParams(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    region: str = Field(min_length=1, description="AWS region of the stack")
    credentials: Credentials = Field(default_factory=InheritCredentials,
                                     description="connector credentials")
    stack_name: str = Field(alias="stackName", pattern=r"^[A-Za-z][A-Za-z0-9-]{0,127}$",
                            description="the stack's name (letters, digits, -)")
    poll_interval: Duration = Field(default=5.0, alias="pollInterval", gt=0,
                                    description="how often the stack's status is read")
    role_arn: str | None = Field(default=None, alias="roleArn",
                                 description="the role CloudFormation acts as")


class CreateStackParams(StackParams):
    template: str | ManifestSource | None = Field(
        default=None, description="the template: its text, or a source "
                                  "({store: files|s3|git|inline, ...})")
    template_url: str | None = Field(default=None, alias="templateURL",
                                     description="an S3 URL of the template")
    parameters: dict[str, str] = Field(default_factory=dict,
                                       description="template parameters, by key")
    capabilities: list[str] = Field(
        default_factory=list,
        description="CAPABILITY_IAM, CAPABILITY_NAMED_IAM, CAPABILITY_AUTO_EXPAND")
    tags: dict[str, str] = Field(default_factory=dict, description="stack tags")

    @model_validator(mode="after")
    def _one_template(self) -> CreateStackParams:
        if (self.template is None) == (self.template_url is None):
            raise ValueError("give exactly one of template and templateURL")
        return self


class DeleteStackParams(StackParams):
    pass


class RollbackStackParams(StackParams):
    rollback_data: dict[str, Any] = Field(
        alias="rollbackData",
        description="the create step's rollbackData output "
                    "(<+execution.steps.ID.output.rollbackData>)")
