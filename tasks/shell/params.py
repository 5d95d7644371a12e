"""Params of ``shell.script``: the script, its shell, its environment and the variables
it hands back."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from tasks.aws.credentials import Credentials, InheritCredentials
from tasks.manifests.sources import ManifestSource
from wire.durations import Duration

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# Set by the step itself; a user value for one of these would be silently overwritten.
RESERVED = frozenset({"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
                      "AWS_REGION", "AWS_DEFAULT_REGION", "AWS_ENDPOINT_URL", "ECS_CLUSTER",
                      "DELEGATE_OUTPUT_DIR", "PROVISIONER_OUTPUT_PATH"})


class ShellScriptParams(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    script: str | ManifestSource = Field(
        description="the script: its text, or a source ({store: files|s3|git|inline, ...})")
    shell: Literal["bash", "sh"] = Field(default="bash", description="bash or sh")
    environment_variables: dict[str, str] = Field(
        default_factory=dict, alias="environmentVariables",
        description="exported to the script; values may hold expressions and "
                    "<+secrets.getValue(\"NAME\")>")
    output_variables: list[str] = Field(
        default_factory=list, alias="outputVariables",
        description="shell variables the script sets; their values after it exits become "
                    "the step's outputs (<+execution.steps.ID.output.NAME>)")
    working_directory: str | None = Field(
        default=None, alias="workingDirectory",
        description="an existing directory to run in (default: a fresh temporary one)")
    region: str | None = Field(default=None, description="the infrastructure's AWS region, "
                               "exported as AWS_REGION and AWS_DEFAULT_REGION")
    cluster: str | None = Field(default=None, description="exported as ECS_CLUSTER")
    credentials: Credentials = Field(
        default_factory=InheritCredentials,
        description="AWS credentials exported to the script (AWS_ACCESS_KEY_ID, ...)")
    kill_grace: Duration = Field(
        default=10.0, alias="killGrace", gt=0, le=300,
        description="on abort or timeout: how long after SIGTERM the script's process "
                    "group gets SIGKILL")

    @field_validator("environment_variables")
    @classmethod
    def _env_names(cls, value: dict[str, str]) -> dict[str, str]:
        for name in value:
            if not _NAME.fullmatch(name):
                raise ValueError(f"{name!r} is not a shell variable name (letters, digits "
                                 "and _, not starting with a digit)")
            if name in RESERVED:
                raise ValueError(f"{name} is set by the step from its infrastructure; "
                                 "remove it from environmentVariables")
        return value

    @field_validator("output_variables")
    @classmethod
    def _output_names(cls, value: list[str]) -> list[str]:
        for name in value:
            if not _NAME.fullmatch(name):
                raise ValueError(f"{name!r} is not a shell variable name (letters, digits "
                                 "and _, not starting with a digit)")
        if len(set(value)) != len(value):
            raise ValueError("an output variable is named twice")
        return value
