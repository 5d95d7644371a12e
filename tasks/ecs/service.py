"""Small ECS service helpers shared by the deploy and rollback steps."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from agent.context import UnitLog
from tasks.aws.ports import EcsClient
from tasks.ecs.errors import aws_errors, unthrottled
from tasks.ecs.params import EcsTarget
from tasks.ecs.watcher import (
    ServiceDescriber,
    Target,
    WatchState,
    event_ids,
    wait_for_steady_state,
)

# Events stamped this much before our start are still read: AWS and local clocks drift.
CLOCK_SKEW = timedelta(minutes=1)


async def describe_one(ecs: EcsClient, cluster: str, name: str) -> dict[str, Any] | None:
    """The service, or None when ECS reports it MISSING."""
    with aws_errors(f"DescribeServices for service {name} in cluster {cluster}"):
        answer = await unthrottled(lambda: ecs.describe_services(cluster=cluster,
                                                                 services=[name]))
    services: list[dict[str, Any]] = answer.get("services", [])
    return services[0] if services else None


def primary_deployment(service: dict[str, Any]) -> dict[str, Any] | None:
    return next((d for d in service.get("deployments") or [] if d.get("status") == "PRIMARY"),
                None)


def status_of(service: dict[str, Any] | None) -> str:
    return "MISSING" if service is None else str(service.get("status", "ACTIVE"))


def deployment_id(service: dict[str, Any]) -> str | None:
    """The id (ecs-svc/...) of the deployment a create or update started."""
    value = (primary_deployment(service) or {}).get("id")
    return None if value is None else str(value)


async def watch_deployment(describer: ServiceDescriber, ecs: EcsClient, log: UnitLog,
                           params: EcsTarget, service: dict[str, Any], task_definition: str,
                           *, started: datetime | None) -> None:
    """Wait until the deployment that CreateService / UpdateService answered with
    (``service``) reaches steady state. Events from before ``started`` belong to earlier
    deployments; a new service has none, so it passes None."""
    await wait_for_steady_state(
        describer=describer, ecs=ecs, log=log, cluster=params.cluster,
        target=Target(str(service["serviceName"]), deployment_id(service), task_definition),
        state=WatchState(seen=event_ids(service)), poll_interval=params.poll_interval,
        give_up_after=params.steady_state_timeout,
        not_before=None if started is None else started - CLOCK_SKEW)
