"""One instance-sync round for one cluster, in as few ECS calls as ECS allows.

Per service (ListTasks, DescribeTasks, DescribeServices each) 2,000 services cost about
6,000 calls. Instead: the cluster's RUNNING tasks are listed once (100 per page) and
described 100 at a time, then grouped by their ``group`` (``service:NAME``); the services
are described 10 at a time through the shared coalescing describer (tasks/ecs/describe),
so a deployment watching the same cluster shares those calls too. 2,000 services with
4,000 tasks: 200 + 40 + 40 = 280 calls (bench/instance_sync.py)."""

from __future__ import annotations

import asyncio
import json
from collections import Counter, defaultdict
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from agent.context import TaskContext, UnitLog
from tasks.aws.clients import aws_session
from tasks.aws.credentials import Credentials, InheritCredentials
from tasks.aws.ports import EcsClient, Shape
from tasks.ecs.describe import shared_describer
from tasks.ecs.errors import aws_errors
from wire.protocol import MAX_MESSAGE_BYTES

TASKS_PER_CALL = 100  # ListTasks' page and DescribeTasks' limit
# What the task details may take of the result message; past it they are left out.
OUTPUT_BUDGET = MAX_MESSAGE_BYTES - 128 * 1024


class InstanceSyncParams(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    region: str = Field(min_length=1, description="AWS region of the cluster")
    cluster: str = Field(min_length=1, description="cluster name or ARN")
    credentials: Credentials = Field(default_factory=InheritCredentials,
                                     description="connector credentials")
    services: list[str] = Field(min_length=1, description="the service names to report")


def _iso(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value


def instance_of(task: Shape) -> dict[str, Any]:
    """What the manager keeps of one running task."""
    td = str(task.get("taskDefinitionArn", ""))
    return {
        "taskArn": task.get("taskArn"), "taskDefinitionArn": td,
        "revision": td.rsplit("/", 1)[-1], "deploymentId": task.get("startedBy"),
        "lastStatus": task.get("lastStatus"), "health": task.get("healthStatus", "UNKNOWN"),
        "launchType": task.get("launchType"), "availabilityZone": task.get("availabilityZone"),
        "startedAt": _iso(task.get("startedAt")),
        "containers": [{"name": c.get("name"), "image": c.get("image"),
                        "imageDigest": c.get("imageDigest")}
                       for c in task.get("containers", [])],
    }


async def running_tasks(ecs: EcsClient, cluster: str) -> list[Shape]:
    """Every RUNNING-desired task of the cluster: ListTasks pages, DescribeTasks batches."""
    arns: list[str] = []
    with aws_errors(f"ECS ListTasks in cluster {cluster}"):
        async for page in ecs.get_paginator("list_tasks").paginate(
                cluster=cluster, desiredStatus="RUNNING",
                PaginationConfig={"PageSize": TASKS_PER_CALL}):
            arns.extend(page.get("taskArns", []))
    batches = [arns[i:i + TASKS_PER_CALL] for i in range(0, len(arns), TASKS_PER_CALL)]
    with aws_errors(f"ECS DescribeTasks in cluster {cluster}"):
        answers = await asyncio.gather(*(ecs.describe_tasks(cluster=cluster, tasks=b)
                                         for b in batches))
    return [t for answer in answers for t in answer.get("tasks", [])]


def _service_view(service: Shape | None) -> dict[str, Any]:
    if service is None:
        return {"status": "MISSING"}
    return {
        "status": service.get("status"), "taskDefinitionArn": service.get("taskDefinition"),
        "desired": service.get("desiredCount", 0), "running": service.get("runningCount", 0),
        "deployments": [{"id": d.get("id"), "status": d.get("status"),
                         "taskDefinitionArn": d.get("taskDefinition"),
                         "rolloutState": d.get("rolloutState")}
                        for d in service.get("deployments", [])],
    }


def fit(services: dict[str, dict[str, Any]]) -> bool:
    """Leave out container details, then tasks, until the answer fits one message;
    True when something was left out."""
    def size() -> int:
        return len(json.dumps(services, default=str))

    if size() <= OUTPUT_BUDGET:
        return False
    for view in services.values():
        for task in view.get("tasks", []):
            task.pop("containers", None)
    for view in sorted(services.values(), key=lambda v: -len(v.get("tasks", []))):
        if size() <= OUTPUT_BUDGET:
            break
        view["tasksLeftOut"] = len(view.get("tasks", []))
        view["tasks"] = []
    return True


async def sync_cluster(ctx: TaskContext[InstanceSyncParams], log: UnitLog
                       ) -> dict[str, dict[str, Any]]:
    params = ctx.params
    names = list(dict.fromkeys(params.services))
    async with aws_session(ctx, params.credentials, params.region) as aws:
        with aws_errors("Connecting to AWS"):
            ecs = await aws.ecs()
        tasks = await running_tasks(ecs, params.cluster)
        async with shared_describer(ecs, credentials=params.credentials,
                                    region=params.region, cluster=params.cluster) as d:
            with aws_errors(f"ECS DescribeServices in cluster {params.cluster}"):
                found = await asyncio.gather(*(d.describe(n, delay=0) for n in names))
    by_group: defaultdict[str, list[Shape]] = defaultdict(list)
    for task in tasks:
        by_group[str(task.get("group", ""))].append(task)
    services = {}
    for name, service in zip(names, found, strict=True):
        view = _service_view(service)
        view["tasks"] = [instance_of(t) for t in by_group.get(f"service:{name}", [])]
        services[name] = view
    log.info(f"{len(tasks)} running task(s) in cluster {params.cluster}; "
             f"{len(names)} service(s) reported")
    return services


async def instance_sync(ctx: TaskContext[InstanceSyncParams]) -> dict[str, Any]:
    calls: Counter[str] = Counter()
    observer = ctx.aws_call_observer

    def count(service: str, operation: str, throttled: bool) -> None:
        calls[operation] += 1
        if observer is not None:
            observer(service, operation, throttled)

    ctx.aws_call_observer = count
    ctx.output.update(cluster=ctx.params.cluster, region=ctx.params.region)
    async with ctx.log.unit("Sync Instances") as log:
        services = await sync_cluster(ctx, log)
        truncated = fit(services)
        if truncated:
            log.warn("the cluster's task details do not fit one message; some are left out")
        log.info(f"AWS calls: {dict(calls)}")
    ctx.output.update(services=services, calls=dict(calls), truncated=truncated)
    return ctx.output
