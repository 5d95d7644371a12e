"""Typed interfaces for the AWS calls task handlers make.

aiobotocore builds its client methods at run time, so a client is ``Any`` to mypy. These
Protocols name only the operations (and keywords) we use, so a misspelt operation or
keyword is a type error rather than a failed deployment. ``**kwargs`` stays open for
the manifest-shaped requests (CreateService, RunTask ...) that botocore validates.

Answers are TypedDicts of the top-level keys we read (a misspelt one is a type error too);
the objects inside (a service, a task, a rule ...) stay ``Shape``, dicts as AWS sends them.
Every key is optional to mypy where AWS may leave it out, so the code says what it does
when it is missing.
"""

from __future__ import annotations

from collections.abc import AsyncIterable
from typing import Any, Literal, Protocol, TypedDict

Answer = dict[str, Any]  # an answer whose keys we do not read
Shape = dict[str, Any]  # one object of an answer: a service, a task, a rule ...


class ServicesAnswer(TypedDict, total=False):  # DescribeServices
    services: list[Shape]
    failures: list[Shape]


class ServiceAnswer(TypedDict):  # CreateService, UpdateService, DeleteService
    service: Shape


class _TaskDefinitionAnswer(TypedDict):
    taskDefinition: Shape


class TaskDefinitionAnswer(_TaskDefinitionAnswer, total=False):
    # RegisterTaskDefinition, DescribeTaskDefinition; tags with include=["TAGS"].
    tags: list[dict[str, str]]


class TasksAnswer(TypedDict, total=False):  # RunTask, DescribeTasks
    tasks: list[Shape]
    failures: list[Shape]


class LoadBalancersAnswer(TypedDict, total=False):
    LoadBalancers: list[Shape]
    NextMarker: str


class ListenersAnswer(TypedDict, total=False):
    Listeners: list[Shape]
    NextMarker: str


class RulesAnswer(TypedDict, total=False):
    Rules: list[Shape]
    NextMarker: str


class TargetGroupsAnswer(TypedDict, total=False):
    TargetGroups: list[Shape]
    NextMarker: str


class ClustersAnswer(TypedDict, total=False):  # DescribeClusters
    clusters: list[Shape]
    failures: list[Shape]


class TargetHealthAnswer(TypedDict, total=False):  # DescribeTargetHealth
    TargetHealthDescriptions: list[Shape]


class ScalingPolicyAnswer(TypedDict, total=False):  # PutScalingPolicy
    PolicyARN: str
    Alarms: list[Shape]


class Paginator(Protocol):
    def paginate(self, **kwargs: Any) -> AsyncIterable[Answer]: ...


class ClientMeta(Protocol):
    endpoint_url: str
    region_name: str
    service_model: Any  # botocore.model.ServiceModel (botocore ships no types)
    events: Any  # botocore.hooks.BaseEventHooks


class BotocoreClient(Protocol):
    """Any client, for what every client has: its endpoint, model and event hooks."""

    meta: ClientMeta


class EcsClient(Protocol):
    meta: ClientMeta

    async def describe_services(self, *, cluster: str, services: list[str],
                                **kwargs: Any) -> ServicesAnswer: ...
    async def describe_task_definition(self, *, taskDefinition: str,
                                       **kwargs: Any) -> TaskDefinitionAnswer: ...
    async def describe_tasks(self, *, cluster: str, tasks: list[str]) -> TasksAnswer: ...
    async def register_task_definition(self, **kwargs: Any) -> TaskDefinitionAnswer: ...
    async def create_service(self, **kwargs: Any) -> ServiceAnswer: ...
    async def update_service(self, **kwargs: Any) -> ServiceAnswer: ...
    async def delete_service(self, *, cluster: str, service: str,
                             force: bool = ...) -> ServiceAnswer: ...
    async def run_task(self, **kwargs: Any) -> TasksAnswer: ...
    async def stop_task(self, *, cluster: str, task: str, reason: str = ...) -> Answer: ...
    async def tag_resource(self, *, resourceArn: str,
                           tags: list[dict[str, str]]) -> Answer: ...
    async def describe_clusters(self, *, clusters: list[str],
                                **kwargs: Any) -> ClustersAnswer: ...
    def get_paginator(self, operation_name: Literal["list_tasks", "list_clusters",
                                                    "list_services"],
                      ) -> Paginator: ...


class Elbv2Client(Protocol):
    meta: ClientMeta

    async def describe_load_balancers(self, **kwargs: Any) -> LoadBalancersAnswer: ...
    async def describe_listeners(self, **kwargs: Any) -> ListenersAnswer: ...
    async def describe_rules(self, **kwargs: Any) -> RulesAnswer: ...
    async def describe_target_groups(self, **kwargs: Any) -> TargetGroupsAnswer: ...
    async def modify_listener(self, *, ListenerArn: str, **kwargs: Any) -> Answer: ...
    async def modify_rule(self, *, RuleArn: str, **kwargs: Any) -> Answer: ...
    async def describe_target_health(self, *, TargetGroupArn: str) -> TargetHealthAnswer: ...
    def get_paginator(self, operation_name: Literal["describe_load_balancers",
                                                    "describe_listeners", "describe_rules",
                                                    "describe_target_groups"],
                      ) -> Paginator: ...


class EcrClient(Protocol):
    """Amazon ECR, read-only: the look-ups (repositories and their images) and the
    artifact sources (tasks/artifacts/ecr.py)."""

    meta: ClientMeta

    async def describe_repositories(self, *, repositoryNames: list[str]) -> Answer: ...

    def get_paginator(self, operation_name: Literal["describe_repositories",
                                                    "describe_images"],
                      ) -> Paginator: ...


class Ec2Client(Protocol):
    """EC2, for the look-ups: the subnets and security groups of a network configuration."""

    meta: ClientMeta

    def get_paginator(self, operation_name: Literal["describe_subnets",
                                                    "describe_security_groups"],
                      ) -> Paginator: ...


class AutoScalingClient(Protocol):
    """Application Auto Scaling."""

    meta: ClientMeta

    # Register and Put take the captured requests (rollback data, manifests) as they are.
    async def register_scalable_target(self, **kwargs: Any) -> Answer: ...
    async def deregister_scalable_target(self, *, ServiceNamespace: str, ResourceId: str,
                                         ScalableDimension: str) -> Answer: ...
    async def put_scaling_policy(self, **kwargs: Any) -> ScalingPolicyAnswer: ...
    async def delete_scaling_policy(self, *, PolicyName: str, ServiceNamespace: str,
                                    ResourceId: str, ScalableDimension: str) -> Answer: ...
    def get_paginator(self, operation_name: Literal["describe_scalable_targets",
                                                    "describe_scaling_policies"],
                      ) -> Paginator: ...


class S3Client(Protocol):
    async def head_object(self, *, Bucket: str, Key: str) -> Answer: ...
    async def get_object(self, *, Bucket: str, Key: str) -> Answer: ...


class StsClient(Protocol):
    async def get_caller_identity(self) -> Answer: ...
    async def assume_role(self, **kwargs: Any) -> Answer: ...


class CloudFormationClient(Protocol):
    """The CloudFormation calls of the provisioner steps (tasks/cloudformation)."""

    async def describe_stacks(self, *, StackName: str) -> Answer: ...
    async def describe_stack_events(self, *, StackName: str) -> Answer: ...
    async def get_template(self, *, StackName: str) -> Answer: ...
    async def create_stack(self, **kwargs: Any) -> Answer: ...
    async def update_stack(self, **kwargs: Any) -> Answer: ...
    async def delete_stack(self, *, StackName: str) -> Answer: ...
