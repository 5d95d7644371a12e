"""One instance-sync round for one cluster, in as few ECS calls as ECS allows.

Per service (ListTasks, DescribeTasks, DescribeServices each) 2,000 services cost about
6,000 calls. Instead: the cluster's RUNNING tasks are listed once (100 per page) and
described 100 at a time, then grouped by their ``group`` (``service:NAME``); the services
are described 10 at a time through the shared coalescing describer (tasks/ecs/describe),
so a deployment watching the same cluster shares those calls too. 2,000 services with
4,000 tasks: 200 + 40 + 40 = 280 calls (bench/instance_sync.py)."""

from __future__ import annotations

import asyncio
import base64
import json
import time
import zlib
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
from wire.lookups import SERVICES_ENCODING
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


def _containers(task: Shape) -> list[dict[str, Any]]:
    return [{"name": c.get("name"), "image": c.get("image"),
             "imageDigest": c.get("imageDigest")} for c in task.get("containers", [])]


def short(value: Any, prefix: str) -> str:
    """``value`` without ``prefix`` (the manager puts it back); whole if it lacks it."""
    text = str(value or "")
    return text[len(prefix):] if prefix and text.startswith(prefix) else text


def prefixes_of(tasks: list[Shape]) -> dict[str, str]:
    """What every task ARN and task definition ARN of the cluster starts with."""
    if not tasks:
        return {"taskArnPrefix": "", "taskDefinitionArnPrefix": ""}
    arn, td = str(tasks[0].get("taskArn", "")), str(tasks[0].get("taskDefinitionArn", ""))
    head, found, _ = td.partition("task-definition/")
    return {"taskArnPrefix": arn.rpartition("/")[0] + "/",
            "taskDefinitionArnPrefix": head + found if found else ""}


def groups_of(tasks: list[Shape], prefixes: dict[str, str]) -> list[dict[str, Any]]:
    """The tasks as rows of SYNC_TASK_FIELDS, grouped by task definition and containers
    (image and digest), so each of those is said once."""
    groups: dict[str, dict[str, Any]] = {}
    for task in tasks:
        td = short(task.get("taskDefinitionArn"), prefixes["taskDefinitionArnPrefix"])
        containers = _containers(task)
        group = groups.setdefault(json.dumps([td, containers]), {
            "taskDefinition": td, "containers": containers, "tasks": []})
        group["tasks"].append([
            short(task.get("taskArn"), prefixes["taskArnPrefix"]), task.get("startedBy"),
            task.get("lastStatus"), task.get("healthStatus", "UNKNOWN"),
            task.get("launchType"), task.get("availabilityZone"),
            _iso(task.get("startedAt"))])
    return list(groups.values())


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


def _service_view(service: Shape | None, prefixes: dict[str, str]) -> dict[str, Any]:
    if service is None:
        return {"status": "MISSING"}
    primary: Shape = next((d for d in service.get("deployments", [])
                    if d.get("status") == "PRIMARY"), {})
    return {"status": service.get("status"),
            "taskDefinition": short(service.get("taskDefinition"),
                                    prefixes["taskDefinitionArnPrefix"]),
            "desired": service.get("desiredCount", 0),
            "running": service.get("runningCount", 0), "primaryDeployment": primary.get("id")}


def pack(services: dict[str, dict[str, Any]]) -> str:
    """The services as zlib-compressed JSON in base64: the rows repeat a lot (about ten
    to one), and 4,000 tasks as plain JSON are over one message."""
    raw = json.dumps(services, separators=(",", ":"), default=str).encode()
    return base64.b64encode(zlib.compress(raw, 6)).decode()


def fit(services: dict[str, dict[str, Any]]) -> tuple[str, bool]:
    """The packed services, leaving out the tasks of the services with the most until
    they fit one message; True when something was left out (those services then say
    ``tasksLeftOut``)."""
    packed = pack(services)
    if len(packed) <= OUTPUT_BUDGET:
        return packed, False
    by_size = sorted(services, key=lambda n: -sum(len(g["tasks"])
                                                  for g in services[n]["groups"]))
    for name in by_size:
        view = services[name]
        view["tasksLeftOut"] = sum(len(g["tasks"]) for g in view["groups"])
        view["groups"] = []
        packed = pack(services)
        if len(packed) <= OUTPUT_BUDGET:
            break
    return packed, True


async def sync_cluster(ctx: TaskContext[InstanceSyncParams], log: UnitLog
                       ) -> tuple[dict[str, dict[str, Any]], dict[str, str]]:
    params = ctx.params
    names = list(dict.fromkeys(params.services))
    async with aws_session(ctx, params.credentials, params.region) as aws:
        with aws_errors("Connecting to AWS"):
            ecs = await aws.ecs()
        started = time.monotonic()
        tasks = await running_tasks(ecs, params.cluster)
        listed = time.monotonic()
        async with shared_describer(ecs, credentials=params.credentials,
                                    region=params.region, cluster=params.cluster) as d:
            with aws_errors(f"ECS DescribeServices in cluster {params.cluster}"):
                found = await asyncio.gather(*(d.describe(n, delay=0) for n in names))
    by_group: defaultdict[str, list[Shape]] = defaultdict(list)
    for task in tasks:
        by_group[str(task.get("group", ""))].append(task)
    prefixes = prefixes_of(tasks)
    services = {}
    for name, service in zip(names, found, strict=True):
        view = _service_view(service, prefixes)
        view["groups"] = groups_of(by_group.get(f"service:{name}", []), prefixes)
        services[name] = view
    log.info(f"{len(tasks)} running task(s) in cluster {params.cluster} listed and "
             f"described in {listed - started:.1f} s; {len(names)} service(s) described "
             f"in {time.monotonic() - listed:.1f} s")
    return services, prefixes


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
        services, prefixes = await sync_cluster(ctx, log)
        packed, truncated = fit(services)
        if truncated:
            log.warn("the cluster's task details do not fit one message; some are left out")
        log.info(f"AWS calls: {dict(calls)}")
    ctx.output.update(services=packed, servicesEncoding=SERVICES_ENCODING, calls=dict(calls),
                      truncated=truncated, **prefixes)
    return ctx.output
