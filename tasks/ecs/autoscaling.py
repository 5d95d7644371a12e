"""Application Auto Scaling around a rolling deploy.

Before an update the service's scaling policies are deleted and its scalable targets
deregistered (so scaling does not fight the rollout); after steady state the manifests'
targets and policies are attached. What was attached before is captured as request
dicts (JSON-safe, keyed as the Register/Put requests) so a rollback can put it back.

Describe answers are filtered by exact ``ResourceId`` here: moto treats the filter as a
substring (``service/c/web`` also matches ``service/c/web-canary``).
"""

from __future__ import annotations

from typing import Any

from agent.context import UnitLog
from tasks.aws.ports import AutoScalingClient, BotocoreClient

NAMESPACE = "ecs"
DIMENSION = "ecs:service:DesiredCount"


def resource_id(cluster: str, service: str) -> str:
    cluster_name = cluster.rsplit("/", 1)[-1]
    return f"service/{cluster_name}/{service}"


def _request_fields(client: BotocoreClient, operation: str,
                    described: dict[str, Any]) -> dict[str, Any]:
    """Keep only what the operation's request accepts (describe output has ARNs,
    timestamps, alarms ...)."""
    members = client.meta.service_model.operation_model(operation).input_shape.members
    return {k: v for k, v in described.items() if k in members}


async def scalable_targets(aas: AutoScalingClient, cluster: str,
                           service: str) -> list[dict[str, Any]]:
    rid = resource_id(cluster, service)
    found: list[dict[str, Any]] = []
    paginator = aas.get_paginator("describe_scalable_targets")
    async for page in paginator.paginate(ServiceNamespace=NAMESPACE, ResourceIds=[rid]):
        found.extend(t for t in page.get("ScalableTargets", []) if t.get("ResourceId") == rid)
    return found


async def scaling_policies(aas: AutoScalingClient, cluster: str,
                           service: str) -> list[dict[str, Any]]:
    rid = resource_id(cluster, service)
    found: list[dict[str, Any]] = []
    paginator = aas.get_paginator("describe_scaling_policies")
    async for page in paginator.paginate(ServiceNamespace=NAMESPACE, ResourceId=rid):
        found.extend(p for p in page.get("ScalingPolicies", []) if p.get("ResourceId") == rid)
    return found


async def capture(aas: AutoScalingClient, cluster: str, service: str) -> tuple[list[dict[str, Any]],
                                                                list[dict[str, Any]]]:
    """The service's targets and policies as RegisterScalableTarget / PutScalingPolicy
    requests, for the rollback data."""
    targets = [_request_fields(aas, "RegisterScalableTarget", t)
               for t in await scalable_targets(aas, cluster, service)]
    policies = [_request_fields(aas, "PutScalingPolicy", p)
                for p in await scaling_policies(aas, cluster, service)]
    return targets, policies


async def delete_scaling_policies(aas: AutoScalingClient, log: UnitLog, cluster: str,
                                  service: str) -> int:
    log.info(f"Deleting Scaling Policies from service {service}..")
    policies = await scaling_policies(aas, cluster, service)
    if not policies:
        log.info(f"Didn't find any Scaling Policies attached to service {service}")
        return 0
    for policy in policies:
        await aas.delete_scaling_policy(
            PolicyName=policy["PolicyName"], ServiceNamespace=policy["ServiceNamespace"],
            ResourceId=policy["ResourceId"], ScalableDimension=policy["ScalableDimension"])
        log.info(f"Deleted Scaling Policy {policy['PolicyName']}")
    log.info(f"Deleted {len(policies)} Scaling Policies from service {service}")
    return len(policies)


async def deregister_scalable_targets(aas: AutoScalingClient, log: UnitLog, cluster: str,
                                      service: str) -> int:
    log.info(f"Deregistering Scalable Targets from service {service}..")
    targets = await scalable_targets(aas, cluster, service)
    if not targets:
        log.info(f"Didn't find any Scalable Targets on service {service}")
        return 0
    for target in targets:
        await aas.deregister_scalable_target(
            ServiceNamespace=target["ServiceNamespace"], ResourceId=target["ResourceId"],
            ScalableDimension=target["ScalableDimension"])
        log.info(f"Deregistered Scalable Target {target['ResourceId']} "
                 f"({target['ScalableDimension']})")
    return len(targets)


async def remove(aas: AutoScalingClient, log: UnitLog, cluster: str, service: str) -> None:
    await delete_scaling_policies(aas, log, cluster, service)
    log.info("")
    await deregister_scalable_targets(aas, log, cluster, service)


async def attach(aas: AutoScalingClient, log: UnitLog, service: str, targets: list[dict[str, Any]],
                 policies: list[dict[str, Any]]) -> None:
    """Register the targets, then put the policies (a policy needs its target)."""
    if not targets and not policies:
        log.info(f"No Scalable Targets or Scaling Policies to attach to service {service}")
        return
    if targets:
        log.info(f"Registering Scalable Targets to service {service}..")
    for target in targets:
        await aas.register_scalable_target(**target)
        log.info(f"Registered Scalable Target {target['ResourceId']} "
                 f"({target.get('ScalableDimension', DIMENSION)}, min "
                 f"{target.get('MinCapacity', '-')}, max {target.get('MaxCapacity', '-')})")
    if policies:
        log.info(f"Attaching Scaling Policies to service {service}..")
    for policy in policies:
        answer = await aas.put_scaling_policy(**policy)
        log.info(f"Attached Scaling Policy {policy['PolicyName']} with Arn "
                 f"{answer.get('PolicyARN', '?')}")
