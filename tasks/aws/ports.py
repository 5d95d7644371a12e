"""Typed interfaces for the AWS calls task handlers make.

aiobotocore builds its client methods at run time, so a client is ``Any`` to mypy. These
Protocols name only the operations (and keywords) we use, so a misspelt operation or
keyword is a type error rather than a failed deployment. ``**kwargs`` stays open for
the manifest-shaped requests (CreateService, RunTask ...) that botocore validates.
"""

from __future__ import annotations

from collections.abc import AsyncIterable
from typing import Any, Literal, Protocol

Answer = dict[str, Any]


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
                                **kwargs: Any) -> Answer: ...
    async def describe_task_definition(self, *, taskDefinition: str,
                                       **kwargs: Any) -> Answer: ...
    async def describe_tasks(self, *, cluster: str, tasks: list[str]) -> Answer: ...
    async def register_task_definition(self, **kwargs: Any) -> Answer: ...
    async def create_service(self, **kwargs: Any) -> Answer: ...
    async def update_service(self, **kwargs: Any) -> Answer: ...
    async def delete_service(self, *, cluster: str, service: str,
                             force: bool = ...) -> Answer: ...
    async def run_task(self, **kwargs: Any) -> Answer: ...
    async def stop_task(self, *, cluster: str, task: str, reason: str = ...) -> Answer: ...
    async def tag_resource(self, *, resourceArn: str,
                           tags: list[dict[str, str]]) -> Answer: ...
    def get_paginator(self, operation_name: Literal["list_tasks", "list_clusters"],
                      ) -> Paginator: ...


class Elbv2Client(Protocol):
    meta: ClientMeta

    async def describe_load_balancers(self, **kwargs: Any) -> Answer: ...
    async def describe_listeners(self, **kwargs: Any) -> Answer: ...
    async def describe_rules(self, **kwargs: Any) -> Answer: ...
    async def describe_target_groups(self, **kwargs: Any) -> Answer: ...
    async def modify_listener(self, *, ListenerArn: str, **kwargs: Any) -> Answer: ...
    async def modify_rule(self, *, RuleArn: str, **kwargs: Any) -> Answer: ...


class AutoScalingClient(Protocol):
    """Application Auto Scaling."""

    meta: ClientMeta

    # Register and Put take the captured requests (rollback data, manifests) as they are.
    async def register_scalable_target(self, **kwargs: Any) -> Answer: ...
    async def deregister_scalable_target(self, *, ServiceNamespace: str, ResourceId: str,
                                         ScalableDimension: str) -> Answer: ...
    async def put_scaling_policy(self, **kwargs: Any) -> Answer: ...
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
