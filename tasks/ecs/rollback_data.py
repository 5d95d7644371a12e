"""``output.rollbackData`` of ``ecs.rolling_deploy``: what its rollback needs.

The deploy records it before its first change (what the service was), then adds what it
left (task definition, desired count, deployment id) just before and after its own
change, so the rollback can check that nobody deployed since (tasks/ecs/rollback_guard).
Version 1 (before issue 17) lacks what the deployment left; version 2 lacks the replaced
task definition's content, which the rollback registers again if someone deregistered
that revision since (tasks/ecs/saved_revision)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from tasks.ecs.rollback_guard import LeftBehind, scaling_bounds

CURRENT_VERSION = 3
KNOWN_VERSIONS = (1, 2, CURRENT_VERSION)


class RollbackData(BaseModel):
    """What ``ecs.rolling_deploy`` captured before it changed anything, and what it left."""

    # Unknown keys are refused: a misspelt or foreign object is named, not half-read.
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    version: int = Field(
        default=1, description="3 keeps the replaced task definition's content, 2 records "
                               "what the deployment left, 1 (no field) neither")
    existed: bool
    service_name: str = Field(alias="serviceName", min_length=1)
    task_definition_arn: str | None = Field(default=None, alias="taskDefinitionArn")
    task_definition: dict[str, Any] | None = Field(
        default=None, alias="taskDefinition",
        description="taskDefinitionArn's definition as a RegisterTaskDefinition request, "
                    "to register it again if it was deregistered (version 3)")
    desired_count: int | None = Field(default=None, alias="desiredCount")
    scalable_targets: list[dict[str, Any]] = Field(default_factory=list,
                                                   alias="scalableTargets")
    scaling_policies: list[dict[str, Any]] = Field(default_factory=list,
                                                   alias="scalingPolicies")
    service_arn: str | None = Field(default=None, alias="serviceArn")
    # What this deployment left; None until it got as far as changing the service.
    deployed_task_definition_arn: str | None = Field(
        default=None, alias="deployedTaskDefinitionArn",
        description="the task definition the deployment gave the service")
    deployed_desired_count: int | None = Field(
        default=None, alias="deployedDesiredCount",
        description="the desired count the deployment gave the service")
    deployed_scalable_targets: list[dict[str, Any]] = Field(
        default_factory=list, alias="deployedScalableTargets",
        description="the scalable targets it attached (their bounds may move the count)")
    deployment_id: str | None = Field(default=None, alias="deploymentId",
                                      description="id (ecs-svc/...) of its deployment")

    @field_validator("version")
    @classmethod
    def _known_version(cls, value: int) -> int:
        if value not in KNOWN_VERSIONS:
            known = ", ".join(str(v) for v in KNOWN_VERSIONS)
            raise ValueError(f"rollback data version {value} is not one this delegate "
                             f"reads ({known}); roll back with the delegate version that "
                             "deployed it")
        return value

    def dump(self) -> dict[str, Any]:
        return self.model_dump(by_alias=True, mode="json")

    @property
    def knows_what_it_left(self) -> bool:
        return self.version >= 2

    def left_behind(self) -> LeftBehind:
        """The guard's view: our task definition, or the one ours replaced (ECS's circuit
        breaker puts it back), our desired count and our autoscaling's bounds."""
        tds = tuple(t for t in (self.deployed_task_definition_arn, self.task_definition_arn)
                    if t)
        # The replaced count too: an UpdateService that failed left it, as it left the
        # replaced task definition.
        counts = tuple(dict.fromkeys(
            c for c in (self.deployed_desired_count, self.desired_count) if c is not None))
        if self.deployed_task_definition_arn is None:
            counts = ()  # it changed nothing, so the count is not ours to judge
        return LeftBehind(self.service_name, tds, self.deployment_id, counts,
                          scaling_bounds(self.deployed_scalable_targets))
