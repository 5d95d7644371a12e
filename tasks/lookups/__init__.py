"""Look-up task types (``lookup.<kind>``): short read-only answers about an account —
clusters, services, load balancers, listeners, rules, target groups, ECR repositories
and images, subnets and security groups — for the manager's ``GET /api/lookups/KIND``.
The kinds themselves (what each asks for, its columns) are named in wire/lookups.py."""

from __future__ import annotations

from typing import Any

from agent.context import TaskRegistry, TaskType
from tasks.lookups import ecr, ecs, elb, network
from tasks.lookups.common import Finder, handler_of
from tasks.lookups.params import (
    ClusterParams,
    ListenerParams,
    LoadBalancerParams,
    LookupParams,
    OptionalLoadBalancerParams,
    RepositoryParams,
    VpcParams,
)
from wire.lookups import KINDS

_OUTPUTS = {"kind": "the look-up kind", "region": "AWS region looked in",
            "items": "what was found, one object per item (keys per kind: docs/api.md)",
            "truncated": "true when more than 1000 were found and the rest left out"}

_FINDERS: dict[str, tuple[type[LookupParams], Finder[Any]]] = {
    "clusters": (LookupParams, ecs.clusters),
    "services": (ClusterParams, ecs.services),
    "load-balancers": (LookupParams, elb.load_balancers),
    "listeners": (LoadBalancerParams, elb.listeners),
    "listener-rules": (ListenerParams, elb.listener_rules),
    "target-groups": (OptionalLoadBalancerParams, elb.target_groups),
    "repositories": (LookupParams, ecr.repositories),
    "images": (RepositoryParams, ecr.images),
    "subnets": (VpcParams, network.subnets),
    "security-groups": (VpcParams, network.security_groups),
}


def register(registry: TaskRegistry) -> None:
    for kind, spec in KINDS.items():
        model, finder = _FINDERS[kind]
        registry.register(TaskType(
            name=spec.task_type, handler=handler_of(kind, finder),
            summary=f"Look-up: {spec.summary} (read-only, for GET /api/lookups/{kind}).",
            params_model=model, outputs=_OUTPUTS, units=("Look Up",)))
