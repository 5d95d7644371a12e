"""Params of ``terraform_cloud.run``: which workspace, what kind of run, and how to treat
its policy checks."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from wire.durations import Duration

_VARIABLE = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")

RunType = Literal["planAndApply", "plan", "planAndDestroy", "refreshState"]


class TerraformCloudRunParams(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    address: str = Field(
        default="https://app.terraform.io",
        description="the Terraform Cloud or Enterprise address (scheme and host)")
    organization: str = Field(min_length=1, description="the organization's name")
    workspace: str = Field(min_length=1, description="the workspace's name")
    api_token: str = Field(
        alias="apiToken", min_length=1,
        description='an API token with permission to queue and apply runs; give it as '
                    '<+secrets.getValue("NAME")>, never in clear')
    run_type: RunType = Field(
        default="planAndApply", alias="runType",
        description="planAndApply: plan, wait for the policy checks, apply; plan: plan "
                    "and the checks, then discard (nothing changes); planAndDestroy: a "
                    "destroy plan, then apply it; refreshState: a refresh-only run, "
                    "applied")
    message: str = Field(default="Queued by ecs-delegate",
                         description="the run's message, shown in the workspace")
    variables: dict[str, str] = Field(
        default_factory=dict,
        description="run variables (strings), overriding the workspace's for this run "
                    "only; values may hold expressions and secrets")
    targets: list[str] = Field(default_factory=list,
                               description="resource addresses to target (-target)")
    override_policies: bool = Field(
        default=False, alias="overridePolicies",
        description="override soft-failed policy checks (the token needs the right); "
                    "otherwise a soft failure fails the step, like a hard one")
    discard_on_failure: bool = Field(
        default=True, alias="discardOnFailure",
        description="when the step fails or is aborted after planning, discard the run "
                    "so it does not hold the workspace's queue")
    poll_interval: Duration = Field(
        default=5.0, alias="pollInterval", gt=0, le=60,
        description="how often the run's status and log are read")
    provisioner_identifier: str | None = Field(
        default=None, alias="provisionerIdentifier",
        description="a name for this provisioner's runs (recorded with the outputs)")

    @field_validator("address")
    @classmethod
    def _address(cls, value: str) -> str:
        if not re.match(r"https?://[^/\s]+", value):
            raise ValueError(f"{value!r} is not an address: give the scheme and host, "
                             "e.g. https://app.terraform.io")
        return value.rstrip("/")

    @field_validator("variables")
    @classmethod
    def _variable_names(cls, value: dict[str, str]) -> dict[str, str]:
        for name in value:
            if not _VARIABLE.fullmatch(name):
                raise ValueError(f"{name!r} is not a Terraform variable name")
        return value
