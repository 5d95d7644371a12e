"""Params of the Terraform and Terragrunt steps: where the configuration comes from, what
it is run with, and which provisioner's state and history it belongs to."""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator, model_validator

from tasks.aws.credentials import Credentials, InheritCredentials
from tasks.shell.params import RESERVED
from wire.durations import Duration

_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _inside(value: str) -> str:
    """A relative path inside the configuration: no way out of the task's folder."""
    parts = value.replace("\\", "/").split("/")
    if not value or value.startswith("/") or "\x00" in value or ".." in parts:
        raise ValueError(f"{value!r} must be a relative path inside the configuration "
                         "(no leading /, no ..)")
    return value


Inside = Annotated[str, AfterValidator(_inside)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class GitConfiguration(_Model):
    store: Literal["git"]
    # No leading "-": these reach git's command line, where they would read as options.
    repo: str = Field(pattern=r"^[^-]", description="https URL, file:// URL or local path")
    ref: str = Field(pattern=r"^[^-]", description="branch, tag or commit sha")
    folder: Inside = Field(default=".",
                        description="the configuration's folder inside the repository")
    secret_ref: str | None = Field(default=None, alias="secretRef",
                                   description="name of the task secret holding an https "
                                               "token")


class FilesConfiguration(_Model):
    store: Literal["files"]
    paths: list[Annotated[str, Field(min_length=1)]] = Field(
        min_length=1, description="files of the manager's file store")
    folder: str | None = Field(
        default=None, description="the folder the paths are relative to (they keep their "
                                  "place below it); without it each file goes by its name")


class InlineConfiguration(_Model):
    store: Literal["inline"]
    files: dict[Inside, str] = Field(
        min_length=1, description="file name (may hold folders) -> its text")


Configuration = Annotated[GitConfiguration | FilesConfiguration | InlineConfiguration,
                          Field(discriminator="store")]


class TerraformParams(_Model):
    provisioner_identifier: str = Field(
        alias="provisionerIdentifier", pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$",
        description="names this infrastructure: its state (without a backend of its own), "
                    "its lock and its apply history are kept under it")
    configuration: Configuration | None = Field(
        default=None, description="the configuration: {store: git, repo, ref, folder}, "
                                  "{store: files, paths, folder} or {store: inline, files}")
    workspace: str = Field(default="default", pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,89}$",
                           description="the Terraform workspace")
    var_files: list[Inside] = Field(
        default_factory=list, alias="varFiles",
        description="var files, relative to the configuration's folder")
    variables: dict[str, Any] = Field(
        default_factory=dict, description="input variables; values may hold expressions "
                                          "and <+secrets.getValue(\"NAME\")> (masked)")
    backend_config: dict[str, str] = Field(
        default_factory=dict, alias="backendConfig",
        description="-backend-config settings for a backend the configuration declares")
    targets: list[str] = Field(default_factory=list, description="-target addresses")
    environment_variables: dict[str, str] = Field(
        default_factory=dict, alias="environmentVariables",
        description="exported to the binary; values may hold expressions and secrets")
    binary: str | None = Field(default=None, description="path of the binary (default: "
                                                         "terraform or terragrunt on PATH)")
    lock_timeout: Duration = Field(default=0.0, alias="lockTimeout", ge=0, le=3600,
                                   description="how long to wait for a state lock another "
                                               "run holds (default: fail at once)")
    region: str | None = Field(default=None, description="the infrastructure's AWS region, "
                                                         "exported as AWS_REGION")
    credentials: Credentials = Field(default_factory=InheritCredentials,
                                     description="AWS credentials exported to the binary")
    kill_grace: Duration = Field(default=10.0, alias="killGrace", gt=0, le=300,
                                 description="on abort or timeout: how long after SIGTERM "
                                             "the process group gets SIGKILL")

    @field_validator("environment_variables")
    @classmethod
    def _env_names(cls, value: dict[str, str]) -> dict[str, str]:
        for name in value:
            if not _ENV_NAME.fullmatch(name):
                raise ValueError(f"{name!r} is not an environment variable name")
            if name in RESERVED:
                raise ValueError(f"{name} is set by the step from its infrastructure; "
                                 "remove it from environmentVariables")
        return value


class _NeedsConfiguration(TerraformParams):
    @model_validator(mode="after")
    def _has_configuration(self) -> _NeedsConfiguration:
        if self.configuration is None:
            raise ValueError("configuration is required: {store: git, repo, ref, folder}, "
                             "{store: files, paths} or {store: inline, files}")
        return self


class PlanParams(_NeedsConfiguration):
    destroy: bool = Field(default=False, description="plan the destruction instead")


class DestroyParams(_NeedsConfiguration):
    pass


class ApplyParams(TerraformParams):
    plan_step: str | None = Field(
        default=None, alias="planStep",
        description="id of an earlier terraform.plan step of the execution: apply its plan")
    plan_id: str | None = Field(default=None, alias="planId",
                                description="a plan step's planId output (outside an "
                                            "execution)")

    @model_validator(mode="after")
    def _one_source(self) -> ApplyParams:
        planned = self.plan_step is not None or self.plan_id is not None
        if planned == (self.configuration is not None):
            raise ValueError("give configuration (apply it as it is) or planStep/planId "
                             "(apply a plan step's plan), not both or neither")
        if planned and (self.variables or self.var_files or self.targets):
            raise ValueError("a saved plan carries its variables and targets; leave out "
                             "variables, varFiles and targets when applying one")
        return self


class RollbackParams(TerraformParams):
    rollback_data: dict[str, Any] | None = Field(
        default=None, alias="rollbackData",
        description="the apply step's rollbackData output "
                    "(<+execution.steps.ID.output.rollbackData>); without it, the last "
                    "successful apply is applied again")


class TerragruntOptions(_Model):
    run_all: bool = Field(default=False, alias="runAll",
                          description="run-all: the command over every module below the "
                                      "working directory")
    working_directory: Inside | None = Field(
        default=None, alias="workingDirectory",
        description="the folder with terragrunt.hcl, relative to the configuration")


class TerragruntPlanParams(PlanParams, TerragruntOptions):
    pass


class TerragruntApplyParams(ApplyParams, TerragruntOptions):
    @model_validator(mode="after")
    def _no_saved_run_all_plan(self) -> TerragruntApplyParams:
        if self.run_all and (self.plan_step or self.plan_id):
            raise ValueError("a runAll plan is not saved (one per module); apply with "
                             "configuration instead of planStep/planId")
        return self


class TerragruntDestroyParams(DestroyParams, TerragruntOptions):
    pass


class TerragruntRollbackParams(RollbackParams, TerragruntOptions):
    pass
