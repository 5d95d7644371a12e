"""Deleting a service and waiting until ECS lets its name be used again."""

from __future__ import annotations

import asyncio

from agent.context import TaskFailed, UnitLog
from tasks.aws.ports import EcsClient
from tasks.ecs.errors import aws_errors
from tasks.ecs.service import status_of
from tasks.ecs.watcher import ServiceDescriber, human_duration


async def wait_inactive(describer: ServiceDescriber, log: UnitLog, name: str, *,
                        poll_interval: float, give_up_after: float) -> None:
    """Wait for a deleted service to leave DRAINING, in the document's words."""
    log.info(f"Waiting for existing Service {name} to reach inactive state")
    status = "DRAINING"
    try:
        async with asyncio.timeout(give_up_after):
            while status not in {"INACTIVE", "MISSING"}:
                with aws_errors(f"DescribeServices for service {name}"):
                    status = status_of(await describer.describe(name, delay=poll_interval))
    except TimeoutError:
        raise TaskFailed(f"Service {name} was still {status} after "
                         f"{human_duration(give_up_after)}; ECS stops its tasks before it "
                         "becomes INACTIVE. Check its tasks, then run the step again.") from None
    log.info(f"Existing Service {name} reached inactive state")


async def delete_service(ecs: EcsClient, describer: ServiceDescriber, log: UnitLog, *,
                         cluster: str, name: str, poll_interval: float,
                         give_up_after: float) -> None:
    """Force-delete an ACTIVE service (its tasks are stopped) and wait for INACTIVE."""
    log.info(f"Deleting service {name}..")
    with aws_errors(f"DeleteService {name}"):
        await ecs.delete_service(cluster=cluster, service=name, force=True)
    await wait_inactive(describer, log, name, poll_interval=poll_interval,
                        give_up_after=give_up_after)
