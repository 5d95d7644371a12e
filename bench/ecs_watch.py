"""Many concurrent rolling deploys: what the shared steady-state watcher costs.

Against the sandbox (started in a child process, so the figures are this process's own,
the delegate's side), two measurements, each twice on fresh clusters:

* the watcher alone: N services (default 200) get a slow-starting deployment at once and
  N watchers wait for them together, so every poll round covers all N services;
* the handlers: N ``ecs.rolling_deploy`` at once, end to end (their polls spread out, as
  the deploys reach the watch at different times).

Each runs twice:

* coalesced: DescribeServices batches up to 10 services per call (the product);
* baseline: one service per call, as a watcher that polls on its own would.

Prints DescribeServices calls per poll round (mean and busiest round), total calls,
wall time, and this process's RSS and CPU while the deploys wait for steady state.

Run: ``python bench/ecs_watch.py [--deploys 200] [--poll 1s] [--tick 0.2]``.
Figures, not assertions.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import aioboto3

from agent.context import TaskContext, TaskLog
from tasks.aws.clients import close_pooled_clients
from tasks.ecs.describe import DescribeStats, describer_runtime, shared_describer
from tasks.ecs.params import RollingDeployParams
from tasks.ecs.rolling import rolling_deploy
from tasks.ecs.watcher import (
    Target,
    WatchState,
    event_ids,
    wait_for_steady_state,
)
from wire.durations import parse_duration
from wire.protocol import LogPayload, TaskPayload

REGION = "us-east-1"
CLK_TCK = os.sysconf("SC_CLK_TCK")


def start_sandbox(tick: float) -> tuple[subprocess.Popen[str], str]:
    child = subprocess.Popen(
        [sys.executable, "-m", "cli", "sandbox", "--port", "0", "--tick", str(tick)],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
        cwd=Path(__file__).resolve().parents[1])
    assert child.stdout is not None
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        line = child.stdout.readline()
        found = re.search(r"listening on (http://\S+)", line)
        if found:
            return child, found.group(1)
        if not line and child.poll() is not None:
            break
    child.kill()
    raise SystemExit("the sandbox did not start")


class Usage:
    """This process's RSS and CPU, sampled while the deploys run."""

    def __init__(self) -> None:
        self.rss_mb: list[float] = []
        self.cpu_percent: list[float] = []

    @staticmethod
    def _cpu_seconds() -> float:
        fields = Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLK_TCK

    @staticmethod
    def _rss_mb() -> float:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        return 0.0

    async def sample(self, every: float = 0.5) -> None:
        last_cpu, last_wall = self._cpu_seconds(), time.monotonic()
        while True:
            await asyncio.sleep(every)
            cpu, wall = self._cpu_seconds(), time.monotonic()
            self.cpu_percent.append(100 * (cpu - last_cpu) / (wall - last_wall))
            self.rss_mb.append(self._rss_mb())
            last_cpu, last_wall = cpu, wall


async def seed(endpoint: str) -> tuple[list[str], str]:
    session = aioboto3.Session(aws_access_key_id="testing", aws_secret_access_key="testing",
                               region_name=REGION)
    async with session.client("ec2", endpoint_url=endpoint) as ec2:
        subnets = await ec2.describe_subnets(
            Filters=[{"Name": "default-for-az", "Values": ["true"]}])
        vpc = subnets["Subnets"][0]["VpcId"]
        groups = await ec2.describe_security_groups(Filters=[
            {"Name": "vpc-id", "Values": [vpc]}, {"Name": "group-name", "Values": ["default"]}])
    return sorted(s["SubnetId"] for s in subnets["Subnets"]), groups["SecurityGroups"][0][
        "GroupId"]


def rolling_manifests(name: str, subnets: list[str], group: str) -> dict[str, Any]:
    """Inline manifests of one small Fargate service (its own family): the benches'."""
    return {
        "taskDefinition": {"store": "inline", "content": {
            "family": name, "requiresCompatibilities": ["FARGATE"],
            "networkMode": "awsvpc", "cpu": "256", "memory": "512",
            "containerDefinitions": [{"name": "web", "image": "nginx:1.27",
                                      "memory": 128}]}},
        "serviceDefinition": {"store": "inline", "content": {
            "serviceName": name, "launchType": "FARGATE", "desiredCount": 1,
            "networkConfiguration": {"awsvpcConfiguration": {
                "subnets": subnets, "securityGroups": [group]}}}},
    }


def params(cluster: str, name: str, subnets: list[str], group: str,
           poll: float) -> RollingDeployParams:
    return RollingDeployParams.model_validate({
        "region": REGION, "cluster": cluster, "pollInterval": poll,
        "steadyStateTimeout": "10m", "manifests": rolling_manifests(name, subnets, group)})


async def one_deploy(p: RollingDeployParams) -> tuple[bool, str]:
    payloads: list[TaskPayload] = []
    ctx = TaskContext(task_id=uuid.uuid4().hex, type="ecs.rolling_deploy", params=p,
                      secrets={}, context={}, log=TaskLog(payloads.append), files=_NoFiles())
    try:
        await rolling_deploy(ctx)
        return True, ""
    except Exception as exc:
        lines = [line.text for pl in payloads if isinstance(pl, LogPayload)
                 for line in pl.lines]
        return False, f"{exc} | {lines[-3:]}"


class _NoFiles:
    async def get(self, path: str) -> bytes:
        raise FileNotFoundError(path)


async def phase(label: str, endpoint: str, deploys: int, poll: float, batch: int,
                network: tuple[list[str], str]) -> dict[str, Any]:
    session = aioboto3.Session(aws_access_key_id="testing", aws_secret_access_key="testing",
                               region_name=REGION)
    cluster = f"bench-{label}-{uuid.uuid4().hex[:6]}"
    async with session.client("ecs", endpoint_url=endpoint) as ecs:
        await ecs.create_cluster(clusterName=cluster)
    usage = Usage()
    async with describer_runtime(batch_size=batch) as describers:
        sampler = asyncio.create_task(usage.sample())
        started = time.monotonic()
        results = await asyncio.gather(*(
            one_deploy(params(cluster, f"svc-{i:03d}", *network, poll)) for i in range(deploys)))
        wall = time.monotonic() - started
        sampler.cancel()
    failures = [why for ok, why in results if not ok]
    return figures(label, deploys, failures, wall, describers.stats, usage)


def figures(label: str, deploys: int, failures: list[str], wall: float, stats: DescribeStats,
            usage: Usage) -> dict[str, Any]:
    return {
        "label": label, "ok": deploys - len(failures), "failures": failures[:3],
        "wall_s": wall, "calls": stats.calls, "rounds": stats.rounds,
        "largest_round": stats.largest_round,
        "services_in_largest_round": stats.services_in_largest_round,
        "throttled": stats.throttled,
        "rss_peak_mb": max(usage.rss_mb, default=0.0),
        "cpu_mean_percent": statistics.fmean(usage.cpu_percent) if usage.cpu_percent else 0.0,
    }


async def watch_phase(label: str, endpoint: str, services: int, poll: float, batch: int,
                      network: tuple[list[str], str]) -> dict[str, Any]:
    """The watcher alone: ``services`` services get a new, slow-starting deployment at
    once and as many watchers wait for them together on one shared client."""
    session = aioboto3.Session(aws_access_key_id="testing", aws_secret_access_key="testing",
                               region_name=REGION)
    cluster = f"watch-{label}-{uuid.uuid4().hex[:6]}"
    subnets, group = network
    net = {"awsvpcConfiguration": {"subnets": subnets, "securityGroups": [group]}}
    async with session.client("ecs", endpoint_url=endpoint) as ecs:
        await ecs.create_cluster(clusterName=cluster)
        fast, slow = [(await ecs.register_task_definition(
            family=f"watch-{label}", requiresCompatibilities=["FARGATE"],
            networkMode="awsvpc", cpu="256", memory="512",
            containerDefinitions=[{"name": "web", "image": image, "memory": 128}],
        ))["taskDefinition"]["taskDefinitionArn"]
            for image in ("nginx:1.27", "example.com/slow-start:1")]
        names = [f"w-{i:03d}" for i in range(services)]
        await asyncio.gather(*(ecs.create_service(
            cluster=cluster, serviceName=n, taskDefinition=fast, desiredCount=1,
            launchType="FARGATE", networkConfiguration=net) for n in names))
        usage = Usage()

        async def update_and_watch(name: str) -> bool:
            answer = await ecs.update_service(cluster=cluster, service=name,
                                              taskDefinition=slow)
            service = answer["service"]
            primary = next(d for d in service["deployments"] if d["status"] == "PRIMARY")
            payloads: list[TaskPayload] = []
            log = TaskLog(payloads.append)
            async with log.unit("Deploy") as unit, shared_describer(
                    ecs, credentials=None, region=REGION, cluster=cluster) as describer:
                await wait_for_steady_state(
                    describer=describer, ecs=ecs, log=unit, cluster=cluster,
                    target=Target(name, primary["id"], slow),
                    state=WatchState(seen=event_ids(service)), poll_interval=poll,
                    give_up_after=600)
            return True

        async with describer_runtime(batch_size=batch) as describers:
            sampler = asyncio.create_task(usage.sample())
            started = time.monotonic()
            results = await asyncio.gather(*(update_and_watch(n) for n in names),
                                           return_exceptions=True)
            wall = time.monotonic() - started
            sampler.cancel()
    failures = [repr(r) for r in results if r is not True]
    return figures(f"{label} (watcher)", services, failures, wall, describers.stats, usage)


def report(r: dict[str, Any]) -> None:
    per_round = r["calls"] / r["rounds"] if r["rounds"] else 0.0
    print(f"{r['label']:>10}: {r['ok']} deploys ok in {r['wall_s']:.1f}s; DescribeServices "
          f"{r['calls']} calls in {r['rounds']} poll rounds = {per_round:.1f} per round "
          f"(busiest: {r['largest_round']} calls for {r['services_in_largest_round']} "
          f"services); throttled {r['throttled']}; RSS peak {r['rss_peak_mb']:.0f} MB; "
          f"CPU {r['cpu_mean_percent']:.0f}% of a core")
    for failure in r["failures"]:
        print(f"            failure: {failure}")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--deploys", type=int, default=200)
    parser.add_argument("--poll", default="1s", help="pollInterval of every deploy")
    parser.add_argument("--tick", type=float, default=0.2, help="sandbox simulator tick")
    parser.add_argument("--watch-poll", type=parse_duration, default=0.5,
                        help="poll interval of the watcher-alone phase")
    parser.add_argument("--skip-handlers", action="store_true",
                        help="run only the watcher-alone phase")
    args = parser.parse_args()
    poll = parse_duration(args.poll)
    child, endpoint = start_sandbox(args.tick)
    os.environ.update({"AWS_ENDPOINT_URL": endpoint, "AWS_ACCESS_KEY_ID": "testing",
                       "AWS_SECRET_ACCESS_KEY": "testing", "AWS_REGION": REGION})
    try:
        network = await seed(endpoint)
        print(f"{args.deploys} concurrent ecs.rolling_deploy, pollInterval {poll}s, sandbox "
              f"tick {args.tick}s, {os.cpu_count()} cores")
        report(await watch_phase("coalesced", endpoint, args.deploys, args.watch_poll, 10,
                                 network))
        report(await watch_phase("baseline", endpoint, args.deploys, args.watch_poll, 1,
                                 network))
        if not args.skip_handlers:
            report(await phase("coalesced", endpoint, args.deploys, poll, 10, network))
            report(await phase("baseline", endpoint, args.deploys, poll, 1, network))
    finally:
        # The handlers' clients come from the delegate's pool: close it as the delegate
        # does at shutdown, or aiohttp reports their sessions unclosed at exit.
        await close_pooled_clients()
        child.terminate()
        child.wait(timeout=30)


if __name__ == "__main__":
    asyncio.run(main())
