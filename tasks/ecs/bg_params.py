"""Params of the blue/green task types, and the state the create step hands on.

``ecs.blue_green_create_service`` records everything the swap and rollback steps need in
``output.blueGreen`` (before its first change, so a failed create can be rolled back):
the execution passes it on as ``blueGreen: <+execution.steps.ID.output.blueGreen>``.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from tasks.ecs.params import EcsTarget, json_or_empty
from tasks.manifests import ManifestSpecs


class BlueGreenCreateParams(EcsTarget):
    manifests: ManifestSpecs
    load_balancer: str = Field(alias="loadBalancer", min_length=1,
                               description="name or ARN of the ALB or NLB")
    prod_listener_arn: str = Field(alias="prodListenerArn", min_length=1)
    prod_listener_rule_arn: str | None = Field(
        default=None, alias="prodListenerRuleArn",
        description="a rule of the prod listener to switch instead of its default action")
    stage_listener_arn: str = Field(alias="stageListenerArn", min_length=1)
    stage_listener_rule_arn: str | None = Field(default=None, alias="stageListenerRuleArn")
    same_as_already_running_instances: bool = Field(
        default=False, alias="sameAsAlreadyRunningInstances",
        description="give the new service the blue service's desired count")
    update_green_service: bool = Field(
        default=False, alias="updateGreenService",
        description="update an existing green service instead of deleting and recreating it")
    enable_auto_scaling_in_swap_step: bool = Field(
        default=False, alias="enableAutoScalingInSwapStep",
        description="attach the manifests' autoscaling to the new service in the swap step")


class BlueGreenData(BaseModel):
    """``output.blueGreen`` of the create step."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    service_name: str = Field(alias="serviceName")
    new_service_name: str = Field(alias="newServiceName")
    new_service_existed: bool = Field(default=False, alias="newServiceExisted")
    old_service_name: str | None = Field(default=None, alias="oldServiceName")
    old_desired_count: int | None = Field(default=None, alias="oldDesiredCount")
    old_task_definition_arn: str | None = Field(default=None, alias="oldTaskDefinitionArn")
    old_scalable_targets: list[dict[str, Any]] = Field(default_factory=list,
                                                       alias="oldScalableTargets")
    old_scaling_policies: list[dict[str, Any]] = Field(default_factory=list,
                                                       alias="oldScalingPolicies")
    load_balancer_arn: str = Field(alias="loadBalancerArn")
    prod: dict[str, Any]  # elb.Route.as_output() of the prod listener, before any change
    stage: dict[str, Any]
    prod_target_group_arn: str = Field(alias="prodTargetGroupArn")
    stage_target_group_arn: str = Field(alias="stageTargetGroupArn")
    same_target_group: bool = Field(alias="sameTargetGroup")
    auto_scaling_in_swap_step: bool = Field(default=False, alias="autoScalingInSwapStep")
    # The manifests' autoscaling for the new service, when the swap step attaches it.
    scalable_targets: list[dict[str, Any]] = Field(default_factory=list, alias="scalableTargets")
    scaling_policies: list[dict[str, Any]] = Field(default_factory=list, alias="scalingPolicies")
    task_definition_arn: str | None = Field(default=None, alias="taskDefinitionArn")
    # What the create step left on the new service, for the rollback's guard (None: not
    # recorded, by an older delegate or a create step that stopped before it).
    new_desired_count: int | None = Field(
        default=None, alias="newDesiredCount",
        description="the desired count the create step gave the new service")
    new_scalable_targets: list[dict[str, Any]] | None = Field(
        default=None, alias="newScalableTargets",
        description="the autoscaling the create step attached to the new service")


_Data = Annotated[BlueGreenData | None, BeforeValidator(json_or_empty)]


class BlueGreenSwapParams(EcsTarget):
    blue_green: _Data = Field(
        alias="blueGreen",
        description="the create step's output.blueGreen, e.g. "
                    "<+execution.steps.bgCreate.output.blueGreen>")
    do_not_downsize_old_service: bool = Field(
        default=False, alias="doNotDownsizeOldService",
        description="keep the old service's tasks running after the swap")


class BlueGreenRollbackParams(EcsTarget):
    blue_green: _Data = Field(
        default=None, alias="blueGreen",
        description="the create step's output.blueGreen, e.g. "
                    "<+execution.steps.bgCreate.output.blueGreen>")
