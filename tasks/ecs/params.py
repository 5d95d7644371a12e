"""Params of the ECS rolling task types, in the documents' lowerCamel style.

The rolling deploy's rollback data has its own module, tasks/ecs/rollback_data."""

from __future__ import annotations

import json
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from tasks.aws.credentials import Credentials, InheritCredentials
from tasks.ecs.rollback_data import RollbackData
from tasks.manifests import ManifestSpecs
from wire.durations import Duration


class _Params(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class EcsTarget(_Params):
    """Where the service lives and how to reach it."""

    region: str = Field(min_length=1, description="AWS region of the cluster, e.g. us-east-1")
    cluster: str = Field(min_length=1, description="cluster name or ARN")
    credentials: Credentials = Field(
        default_factory=InheritCredentials,
        description="connector credentials; default: the delegate's own (type: inherit)")
    poll_interval: Duration = Field(
        default=10.0, alias="pollInterval", gt=0,
        description="how often to ask ECS how the deployment goes (90s, 10m, 1h or seconds)")
    steady_state_timeout: Duration = Field(
        default=1800.0, alias="steadyStateTimeout", gt=0,
        description="how long to wait for steady state; ECS retries failing launches "
                    "for up to 15 minutes, so keep it above that")


class RollingDeployParams(EcsTarget):
    manifests: ManifestSpecs
    same_as_already_running_instances: bool = Field(
        default=False, alias="sameAsAlreadyRunningInstances",
        description="keep the running service's desired count, ignoring the manifest's")
    force_new_deployment: bool = Field(
        default=False, alias="forceNewDeployment",
        description="start a new deployment even when nothing changed "
                    "(always on when the task definition is given as an ARN)")


def json_or_empty(value: Any) -> Any:
    """An earlier step's output, as the manager hands the expression's value over: an
    object, JSON text, or nothing (None) when that step failed before recording it."""
    if isinstance(value, str):
        value = value.strip()
        if not value or value in {"null", "None"}:
            return None
        try:
            return json.loads(value)
        except json.JSONDecodeError as exc:
            raise ValueError(f"is not JSON ({exc.msg} at line {exc.lineno} column "
                             f"{exc.colno}); pass the earlier step's output as "
                             "<+execution.steps.ID.output.NAME>") from None
    if value == {}:
        return None
    return value


class RollingRollbackParams(EcsTarget):
    rollback_data: Annotated[RollbackData | None, BeforeValidator(json_or_empty)] = Field(
        default=None, alias="rollbackData",
        description="the deploy step's output.rollbackData, e.g. "
                    "<+execution.steps.deploy.output.rollbackData>")
