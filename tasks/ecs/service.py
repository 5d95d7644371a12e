"""Small ECS service helpers shared by the deploy and rollback steps."""

from __future__ import annotations

import asyncio
from typing import Any

from agent.context import TaskFailed, UnitLog
from tasks.ecs.errors import aws_errors, unthrottled
from tasks.ecs.watcher import ServiceDescriber, human_duration


async def describe_one(ecs: Any, cluster: str, name: str) -> dict[str, Any] | None:
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


async def wait_until_inactive(describer: ServiceDescriber, log: UnitLog, name: str, *,
                              poll_interval: float, give_up_after: float) -> None:
    """Wait for a deleted service to leave DRAINING."""
    log.info(f"Waiting for Service {name} to become INACTIVE")
    status = "DRAINING"
    try:
        async with asyncio.timeout(give_up_after):
            while True:
                service = await describer.describe(name, delay=poll_interval)
                status = status_of(service)
                if status in {"INACTIVE", "MISSING"}:
                    log.info(f"Service {name} is {status}")
                    return
    except TimeoutError:
        raise TaskFailed(f"Service {name} was still {status} after "
                         f"{human_duration(give_up_after)}; ECS stops its tasks before it "
                         "becomes INACTIVE. Check its tasks, then run the step again.") from None
