"""The botocore service models the manifests are checked against (loaded once)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Any

import botocore.session
from botocore.model import OperationModel, ServiceModel, Shape


@dataclass(frozen=True)
class Operation:
    service: str
    name: str
    # Where a describe call prints this kind of resource: (operation, output member).
    describe: tuple[str, str] | None = None


REGISTER_TASK_DEFINITION = Operation("ecs", "RegisterTaskDefinition",
                                     ("DescribeTaskDefinition", "taskDefinition"))
CREATE_SERVICE = Operation("ecs", "CreateService", ("DescribeServices", "services"))
UPDATE_SERVICE = Operation("ecs", "UpdateService")
RUN_TASK = Operation("ecs", "RunTask")
REGISTER_SCALABLE_TARGET = Operation("application-autoscaling", "RegisterScalableTarget",
                                     ("DescribeScalableTargets", "ScalableTargets"))
PUT_SCALING_POLICY = Operation("application-autoscaling", "PutScalingPolicy",
                               ("DescribeScalingPolicies", "ScalingPolicies"))


@cache
def _session() -> Any:
    return botocore.session.get_session()


@cache
def service_model(service: str) -> ServiceModel:
    model: ServiceModel = _session().get_service_model(service)
    return model


def operation_model(op: Operation) -> OperationModel:
    return service_model(op.service).operation_model(op.name)


def input_shape(op: Operation) -> Shape:
    shape = operation_model(op).input_shape
    assert shape is not None
    return shape


def members(op: Operation) -> frozenset[str]:
    return frozenset(input_shape(op).members)


@cache
def describe_only_fields(op: Operation) -> frozenset[str]:
    """Fields a describe call prints for this resource that the request does not take:
    what a user who pasted CLI output must lose."""
    if op.describe is None:
        return frozenset()
    describe_op, member = op.describe
    output = service_model(op.service).operation_model(describe_op).output_shape
    assert output is not None
    shape = output.members[member]
    if shape.type_name == "list":
        shape = shape.member
    return frozenset(shape.members) - members(op)
