"""Look-ups of Elastic Load Balancing: load balancers (ALB and NLB), the listeners of one,
the rules of a listener, and target groups with the health of their targets."""

from __future__ import annotations

from typing import Any

from agent.context import TaskContext, TaskFailed
from tasks.aws.clients import AwsSessionFactory
from tasks.aws.ports import Elbv2Client, Shape
from tasks.ecs.errors import aws_errors
from tasks.lookups.common import Items, iso, paged
from tasks.lookups.params import (
    ListenerParams,
    LoadBalancerParams,
    LookupParams,
    OptionalLoadBalancerParams,
)


def _short(arn: str | None) -> str:
    """A target group's name from its ARN (…:targetgroup/NAME/ID)."""
    parts = str(arn or "").split("/")
    return parts[-2] if len(parts) >= 3 else str(arn or "")


def target_groups_of(actions: list[Shape]) -> list[str]:
    """The target group names a forward action sends to (weighted ones included)."""
    names: list[str] = []
    for action in actions:
        if action.get("TargetGroupArn"):
            names.append(_short(action["TargetGroupArn"]))
        for group in (action.get("ForwardConfig") or {}).get("TargetGroups", []):
            name = _short(group.get("TargetGroupArn"))
            if name not in names:
                names.append(name)
    return names


async def _load_balancer_arn(elbv2: Elbv2Client, given: str) -> str:
    if given.startswith("arn:"):
        return given
    with aws_errors(f"ELB DescribeLoadBalancers of {given!r}"):
        answer = await elbv2.describe_load_balancers(Names=[given])
    found = answer.get("LoadBalancers", [])
    if not found:
        raise TaskFailed(f"no load balancer named {given!r}; list them with "
                         "'delegate lookup load-balancers'")
    return str(found[0]["LoadBalancerArn"])


async def load_balancers(ctx: TaskContext[LookupParams], aws: AwsSessionFactory
                         ) -> tuple[Items, bool]:
    elbv2 = await aws.elbv2()
    found, truncated = await paged(elbv2.get_paginator("describe_load_balancers"),
                                   "LoadBalancers", "ELB DescribeLoadBalancers")
    return [{
        "name": lb.get("LoadBalancerName"), "arn": lb.get("LoadBalancerArn"),
        "type": lb.get("Type"), "scheme": lb.get("Scheme"),
        "state": (lb.get("State") or {}).get("Code"), "dnsName": lb.get("DNSName"),
        "vpcId": lb.get("VpcId"), "createdAt": iso(lb.get("CreatedTime")),
    } for lb in found], truncated


async def listeners(ctx: TaskContext[LoadBalancerParams], aws: AwsSessionFactory
                    ) -> tuple[Items, bool]:
    elbv2 = await aws.elbv2()
    arn = await _load_balancer_arn(elbv2, ctx.params.load_balancer)
    found, truncated = await paged(elbv2.get_paginator("describe_listeners"), "Listeners",
                                   "ELB DescribeListeners", LoadBalancerArn=arn)
    items = [{
        "arn": li.get("ListenerArn"), "protocol": li.get("Protocol"), "port": li.get("Port"),
        "defaultTargetGroups": target_groups_of(li.get("DefaultActions", [])),
        "loadBalancerArn": arn,
    } for li in found]
    return sorted(items, key=lambda i: int(i["port"] or 0)), truncated


def _condition(condition: Shape) -> str:
    field = str(condition.get("Field", ""))
    values: list[Any] = list(condition.get("Values") or [])
    for key, config in condition.items():
        if key.endswith("Config") and isinstance(config, dict):
            values = values or list(config.get("Values") or [])
    return f"{field}={','.join(str(v) for v in values)}"


async def listener_rules(ctx: TaskContext[ListenerParams], aws: AwsSessionFactory
                         ) -> tuple[Items, bool]:
    elbv2 = await aws.elbv2()
    found, truncated = await paged(elbv2.get_paginator("describe_rules"), "Rules",
                                   "ELB DescribeRules", ListenerArn=ctx.params.listener)
    items = [{
        "arn": r.get("RuleArn"), "priority": r.get("Priority"),
        "isDefault": bool(r.get("IsDefault")),
        "conditions": [_condition(c) for c in r.get("Conditions", [])],
        "targetGroups": target_groups_of(r.get("Actions", [])),
    } for r in found]
    # "default" sorts last, as ELB evaluates it.
    return sorted(items, key=lambda i: (i["isDefault"], int(i["priority"])
                                        if str(i["priority"]).isdigit() else 0)), truncated


async def target_groups(ctx: TaskContext[OptionalLoadBalancerParams],
                        aws: AwsSessionFactory) -> tuple[Items, bool]:
    elbv2 = await aws.elbv2()
    kwargs: dict[str, Any] = {}
    if ctx.params.load_balancer:
        kwargs["LoadBalancerArn"] = await _load_balancer_arn(elbv2, ctx.params.load_balancer)
    found, truncated = await paged(elbv2.get_paginator("describe_target_groups"),
                                   "TargetGroups", "ELB DescribeTargetGroups", **kwargs)
    items: Items = []
    for group in found:
        arn = str(group["TargetGroupArn"])
        with aws_errors(f"ELB DescribeTargetHealth of {_short(arn)}"):
            health = await elbv2.describe_target_health(TargetGroupArn=arn)
        targets = [{"id": (t.get("Target") or {}).get("Id"),
                    "port": (t.get("Target") or {}).get("Port"),
                    "state": (t.get("TargetHealth") or {}).get("State")}
                   for t in health.get("TargetHealthDescriptions", [])]
        items.append({
            "name": group.get("TargetGroupName"), "arn": arn,
            "protocol": group.get("Protocol"), "port": group.get("Port"),
            "targetType": group.get("TargetType"), "vpcId": group.get("VpcId"),
            "loadBalancerArns": sorted(set(group.get("LoadBalancerArns") or [])),
            "healthy": sum(1 for t in targets if t["state"] == "healthy"),
            "unhealthy": sum(1 for t in targets if t["state"] not in ("healthy", None)),
            "targets": targets,
        })
    return items, truncated
