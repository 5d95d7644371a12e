"""Instance sync: the AWS calls of one round for many services in one cluster.

Against the sandbox (started in a child process), N services (default 2,000) with T tasks
each (default 2: 4,000 tasks) run in one cluster. Then two rounds, each counting its
calls:

* ``instances.sync`` as the delegate runs it (tasks/instances/sync.py): the cluster's
  tasks listed 100 a page and described 100 at a time, grouped by their ``group``, the
  services described 10 at a time through the shared describer; calls counted by the
  task's AWS call observer (the hook on every botocore attempt that feeds the delegate's
  /metrics), paced as the delegate paces ECS;
* naive: per service one ListTasks(serviceName), one DescribeTasks and one
  DescribeServices (plain aioboto3, unpaced, calls counted by a botocore
  ``before-call`` hook), as a sync that asks about each service on its own would.

For each it prints the calls per operation, the total, the issue's goal
(services/10 + 2 x tasks/100) and the floor under ECS's published read rates
(per throttle category, (calls - burst) / sustained rate): how long a round must take
however fast the delegate is.

Run: ``python bench/instance_sync.py [--services 2000] [--tasks 2] [--tick 0.2]``.
Figures, not assertions.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import sys
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import aioboto3

from agent.context import TaskContext, TaskLog
from bench.ecs_watch import REGION, seed, start_sandbox
from manager.instances import unpack
from tasks.aws.clients import close_pooled_clients
from tasks.aws.pacing import BUCKETS, CATEGORIES
from tasks.ecs.describe import describer_runtime
from tasks.instances.sync import InstanceSyncParams, instance_sync
from wire.protocol import LogPayload, TaskPayload

CONCURRENCY = 50


def _session() -> aioboto3.Session:
    return aioboto3.Session(aws_access_key_id="testing", aws_secret_access_key="testing",
                            region_name=REGION)


async def populate(endpoint: str, cluster: str, services: int, tasks: int) -> list[str]:
    """``services`` services of ``tasks`` tasks each; returns once every task RUNs."""
    subnets, group = await seed(endpoint)
    names = [f"svc-{i:05d}" for i in range(services)]
    gate = asyncio.Semaphore(CONCURRENCY)
    async with _session().client("ecs", endpoint_url=endpoint) as ecs:
        await ecs.create_cluster(clusterName=cluster)
        td = (await ecs.register_task_definition(
            family="bench-sync", requiresCompatibilities=["FARGATE"], networkMode="awsvpc",
            cpu="256", memory="512", containerDefinitions=[
                {"name": "web", "image": "nginx:1.27", "memory": 128}]))[
            "taskDefinition"]["taskDefinitionArn"]

        async def create(name: str) -> None:
            async with gate:
                await ecs.create_service(
                    cluster=cluster, serviceName=name, taskDefinition=td,
                    desiredCount=tasks, launchType="FARGATE",
                    networkConfiguration={"awsvpcConfiguration": {
                        "subnets": subnets, "securityGroups": [group]}})

        await asyncio.gather(*(create(n) for n in names))
        deadline = time.monotonic() + 900
        while time.monotonic() < deadline:
            found = (await ecs.describe_clusters(clusters=[cluster]))["clusters"][0]
            if found["runningTasksCount"] >= services * tasks:
                return names
            await asyncio.sleep(1)
    raise SystemExit("the sandbox did not start every task within 15 minutes")


async def ours(cluster: str, names: list[str]) -> tuple[Counter[str], float, int]:
    calls: Counter[str] = Counter()
    payloads: list[TaskPayload] = []
    params = InstanceSyncParams.model_validate(
        {"region": REGION, "cluster": cluster, "services": names})
    ctx = TaskContext(task_id=uuid.uuid4().hex, type="instances.sync", params=params,
                      secrets={}, context={}, log=TaskLog(payloads.append),
                      files=None,  # type: ignore[arg-type]  # the sync reads no files
                      aws_call_observer=lambda _s, op, _t: calls.update([op]))
    started = time.monotonic()
    async with describer_runtime():
        output = await instance_sync(ctx)
    wall = time.monotonic() - started
    await close_pooled_clients()
    services = unpack(output)
    seen = sum(len(g["tasks"]) for s in services.values() for g in s["groups"])
    size = len(json.dumps(output, default=str))
    print(f"the answer is {size} bytes (truncated: {output['truncated']})", file=sys.stderr)
    for line in (ln for p in payloads if isinstance(p, LogPayload) for ln in p.lines):
        print(f"  instances.sync: {line.text}", file=sys.stderr)
    return calls, wall, seen


async def naive(endpoint: str, cluster: str, names: list[str]) -> tuple[Counter[str], float]:
    calls: Counter[str] = Counter()
    gate = asyncio.Semaphore(CONCURRENCY)
    async with _session().client("ecs", endpoint_url=endpoint) as ecs:
        ecs.meta.events.register("before-call.ecs.*",
                                 lambda model, **_: calls.update([model.name]))

        async def one(name: str) -> None:
            async with gate:
                arns = (await ecs.list_tasks(cluster=cluster, serviceName=name))["taskArns"]
                if arns:
                    await ecs.describe_tasks(cluster=cluster, tasks=arns)
                await ecs.describe_services(cluster=cluster, services=[name])

        started = time.monotonic()
        await asyncio.gather(*(one(n) for n in names))
    return calls, time.monotonic() - started


def floor_seconds(calls: Counter[str]) -> float:
    per: Counter[str] = Counter()
    for op, n in calls.items():
        per[CATEGORIES.get(op, op)] += n
    return max((max(0.0, n - BUCKETS[c][0]) / BUCKETS[c][1] for c, n in per.items()
                if c in BUCKETS), default=0.0)


def figures(label: str, calls: Counter[str], wall: float) -> dict[str, Any]:
    return {"round": label, "calls": sum(calls.values()), "by_operation": dict(calls),
            "wall_seconds": round(wall, 2), "ecs_floor_seconds": round(floor_seconds(calls), 1)}


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--services", type=int, default=2000)
    ap.add_argument("--tasks", type=int, default=2, help="tasks per service")
    ap.add_argument("--tick", type=float, default=0.2)
    ap.add_argument("-o", "--output", choices=["text", "json"], default="text")
    args = ap.parse_args()
    child, endpoint = start_sandbox(args.tick)
    os.environ.update(AWS_ENDPOINT_URL=endpoint, AWS_ACCESS_KEY_ID="testing",
                      AWS_SECRET_ACCESS_KEY="testing", AWS_REGION=REGION)
    try:
        cluster = f"bench-sync-{uuid.uuid4().hex[:6]}"
        started = time.monotonic()
        names = await populate(endpoint, cluster, args.services, args.tasks)
        setup = time.monotonic() - started
        our_calls, our_wall, seen = await ours(cluster, names)
        naive_calls, naive_wall = await naive(endpoint, cluster, names)
    finally:
        child.terminate()
        child.wait(timeout=30)
    tasks = args.services * args.tasks
    goal = math.ceil(args.services / 10) + 2 * math.ceil(tasks / 100)
    result = {"services": args.services, "tasks": tasks, "tasks_reported": seen,
              "setup_seconds": round(setup, 1), "goal_calls": goal,
              "rounds": [figures("instances.sync", our_calls, our_wall),
                         figures("naive, per service", naive_calls, naive_wall)]}
    if args.output == "json":
        print(json.dumps(result, indent=2))
        return
    print(f"{args.services} services, {tasks} tasks in one cluster "
          f"(set up in {setup:.0f} s); {seen} tasks reported; goal <= {goal} calls")
    for r in result["rounds"]:
        print(f"  {r['round']:20} {r['calls']:6} calls  {r['wall_seconds']:7.2f} s  "
              f"ECS floor {r['ecs_floor_seconds']:6.1f} s  {r['by_operation']}")


if __name__ == "__main__":
    asyncio.run(main())
