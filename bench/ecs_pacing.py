"""Many rolling deploys through the whole product against ECS's published rate limits.

Three child processes, as in production: ``delegate sandbox --throttle`` (moto plus our
ECS simulator, answering ThrottlingException past ECS's published buckets), ``delegate
manager serve`` and ONE ``delegate run``. N ``ecs.rolling_deploy`` tasks, each with its
own service and task definition family, are submitted through the manager's HTTP API
(16 requests at a time) and waited for. The delegate's AWS calls are counted by its own
AWS call observer, read from its ``/metrics`` before and after the batch.

Figures, not assertions:

* wall time (first submission to the last task's end, as the manager recorded it)
  against the floor: the largest, per ECS throttle category, of
  (accepted calls - burst) / sustained rate, with the sandbox's published buckets
  (``sandbox/throttle.py``). Accepted calls are attempts minus throttled answers.
* each deploy's lateness: its end minus the earliest its own calls allow, defined as

      earliest(k) = max(created(k), T0 + max over c of max(0, (k + 1 - burst_c) / rate_c))
                    + solo

  where deploys are ranked k = 0, 1, ... by submission (the manager's ``created_at``),
  T0 is the first one's ``created_at``, c ranges over the categories in which every
  deploy makes exactly one call (service-read: the DescribeServices that reads the
  service before it is changed; task-definition-modify: RegisterTaskDefinition;
  service-modify: CreateService), and
  ``solo`` is the median submission-to-end time of three deploys run alone before the
  batch (in another Region, so the batch's buckets start full). That is: the time the
  deploy would end if every bucket served those calls in submission order at exactly
  the published rate, and the rest of the deploy took what it takes alone. Status polls
  (more DescribeServices) are left out of the slot count, so the earliest can only be
  too early and a lateness only overstated. Reported: p50, p99, max, and how many are
  over 5 s.
* throttled answers per category, and failed deploys (any end but SUCCESS).

Run: ``python bench/ecs_pacing.py [--deploys 120] [--poll 1s] [--tick 0.2] [-o json]``.
The delegate runs at most 1000 tasks at once (its limit); beyond that the manager
queues them, as it would for a real fleet of one.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx
from prometheus_client.parser import text_string_to_metric_families

from bench.ecs_watch import rolling_manifests
from sandbox.server import seed_network
from sandbox.throttle import BUCKETS, CATEGORIES
from testkit.stack import ManagerApi, ManagerProcess, wait_for
from wire.durations import parse_duration

ROOT = Path(__file__).resolve().parents[1]
REGION = "us-east-1"
SOLO_REGION = "us-west-2"  # the solo runs' own buckets, so the batch's start full
# Categories in which each rolling deploy (of a new service) makes exactly one call.
ONE_PER_DEPLOY = ("service-read", "task-definition-modify", "service-modify")
CONCURRENT_SUBMISSIONS = 16
DELEGATE_LIMIT = 1000  # MAX_CONCURRENT_TASKS' upper bound
UNFINISHED = ("QUEUED", "ASSIGNED", "RUNNING")
LATE = 5.0


@dataclass
class Children:
    """The three processes; ``stop`` ends whichever started, delegate first."""

    workdir: Path
    sandbox: subprocess.Popen[str] | None = None
    manager: ManagerProcess | None = None
    delegate: subprocess.Popen[bytes] | None = None
    exit_codes: dict[str, int | None] = field(default_factory=dict)

    def stop(self) -> None:
        if self.delegate is not None:
            self.exit_codes["delegate"] = _terminate(self.delegate, grace=120)
        if self.manager is not None:
            self.manager.stop()
            self.exit_codes["manager"] = 0
        if self.sandbox is not None:
            self.exit_codes["sandbox"] = _terminate(self.sandbox, grace=30)
            if self.sandbox.stdout is not None:
                self.sandbox.stdout.close()

    def delegate_log(self) -> str:
        path = self.workdir / "delegate.log"
        return path.read_text(errors="replace") if path.exists() else ""


def _terminate(child: subprocess.Popen[Any], grace: float) -> int | None:
    if child.poll() is None:
        child.send_signal(signal.SIGTERM)
        try:
            child.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
    return child.returncode


def start_sandbox(children: Children, tick: float) -> str:
    child = children.sandbox = subprocess.Popen(
        [sys.executable, "-m", "cli", "sandbox", "--port", "0", "--tick", str(tick),
         "--throttle"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, cwd=ROOT)
    assert child.stdout is not None
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        line = child.stdout.readline()
        found = re.search(r"listening on (http://\S+)", line)
        if found:
            return found.group(1)
        if not line and child.poll() is not None:
            break
    raise SystemExit("the sandbox did not start within 60 s")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def start_delegate(children: Children, manager_url: str, token: str, endpoint: str,
                   capacity: int, health_port: int) -> None:
    env = {**os.environ, "ACCOUNT_ID": "acme", "DELEGATE_TOKEN": token,
           "DELEGATE_NAME": "bench-pacing", "DELEGATE_TAGS": "ecs",
           "MANAGER_HOST_AND_PORT": manager_url, "MAX_CONCURRENT_TASKS": str(capacity),
           "HEALTH_PORT": str(health_port), "HEALTH_HOST": "127.0.0.1",
           "LOG_FORMAT": "json", "AWS_ENDPOINT_URL": endpoint, "AWS_REGION": REGION,
           "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
    log = (children.workdir / "delegate.log").open("ab")
    children.delegate = subprocess.Popen(
        [sys.executable, "-m", "cli", "run"], env=env, cwd=ROOT,
        stdout=subprocess.DEVNULL, stderr=log)
    log.close()


def deploy_task(region: str, cluster: str, name: str, network: tuple[list[str], str],
                poll: float) -> dict[str, Any]:
    subnets, group = network
    return {"type": "ecs.rolling_deploy", "selectors": ["ecs"], "timeout": "6h",
            "params": {"region": region, "cluster": cluster, "pollInterval": poll,
                       "steadyStateTimeout": "10m",
                       "manifests": rolling_manifests(name, subnets, group)}}


async def aws_calls(health: str) -> dict[tuple[str, str], float]:
    """(operation, "calls" | "throttles") -> count, from the delegate's /metrics."""
    async with httpx.AsyncClient(timeout=30) as client:
        text = (await client.get(f"{health}/metrics")).text
    counts: dict[tuple[str, str], float] = {}
    for family in text_string_to_metric_families(text):
        kind = {"delegate_aws_api_calls": "calls",
                "delegate_aws_api_throttles": "throttles"}.get(family.name)
        for sample in family.samples if kind else ():
            if sample.name.endswith("_total") and sample.labels.get("service") == "ecs":
                counts[(sample.labels["operation"], kind or "")] = sample.value
    return counts


async def submit_all(api: ManagerApi, tasks: list[dict[str, Any]]) -> list[str]:
    gate = asyncio.Semaphore(CONCURRENT_SUBMISSIONS)

    async def one(task: dict[str, Any]) -> str:
        async with gate:
            return await api.submit(task)

    return list(await asyncio.gather(*(one(t) for t in tasks)))


async def wait_all_finished(api: ManagerApi, timeout: float) -> None:
    async def none_left() -> bool:
        for status in UNFINISHED:
            r = await api.client.get("/api/tasks", params={"status": status, "limit": 1})
            r.raise_for_status()
            if r.json()["tasks"]:
                return False
        return True

    await wait_for(none_left, timeout=timeout, interval=1.0, what="every deploy to end")


async def fetch_all(api: ManagerApi, ids: list[str]) -> list[dict[str, Any]]:
    gate = asyncio.Semaphore(CONCURRENT_SUBMISSIONS)

    async def one(task_id: str) -> dict[str, Any]:
        async with gate:
            return await api.task(task_id)

    return list(await asyncio.gather(*(one(i) for i in ids)))


async def solo_seconds(api: ManagerApi, network: tuple[list[str], str], poll: float,
                       runs: int = 3) -> float:
    """Median submission-to-end time of a deploy with the stack to itself."""
    took = []
    for i in range(runs):
        task_id = await api.submit(deploy_task(SOLO_REGION, "bench-solo", f"solo-{i}",
                                               network, poll))
        view = await api.wait_finished(task_id, timeout=300)
        if view["status"] != "SUCCESS":
            raise SystemExit(f"the solo deploy ended {view['status']}: {view['error']}")
        took.append(view["ended_at"] - view["created_at"])
    return float(statistics.median(took))


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def floor_seconds(accepted: dict[str, float]) -> tuple[float, str]:
    per = {c: max(0.0, (n - BUCKETS[c][0]) / BUCKETS[c][1]) for c, n in accepted.items()}
    category = max(per, key=lambda c: per[c], default="")
    return per.get(category, 0.0), category


def by_category(before: dict[tuple[str, str], float], after: dict[tuple[str, str], float],
                kind: str) -> dict[str, float]:
    out: dict[str, float] = {}
    for (operation, k), value in after.items():
        category = CATEGORIES.get(operation)
        if k == kind and category is not None:
            grown = value - before.get((operation, k), 0.0)
            out[category] = out.get(category, 0.0) + grown
    return {c: n for c, n in sorted(out.items()) if n}


def lateness(views: list[dict[str, Any]], solo: float) -> list[float]:
    """Each deploy's lateness, in submission order (its rank k is its index)."""
    ordered = sorted(views, key=lambda v: v["created_at"])
    t0 = ordered[0]["created_at"]
    late = []
    for k, view in enumerate(ordered):
        slot = max(max(0.0, (k + 1 - BUCKETS[c][0]) / BUCKETS[c][1]) for c in ONE_PER_DEPLOY)
        earliest = max(view["created_at"], t0 + slot) + solo
        late.append(view["ended_at"] - earliest)
    return late


def latest(late: list[float], n: int = 5) -> list[dict[str, float]]:
    """The ``n`` latest deploys: which ranks they had says where the time went."""
    worst = sorted(range(len(late)), key=lambda k: late[k], reverse=True)[:n]
    return [{"rank": k, "late_s": round(late[k], 2)} for k in worst]


def figures(views: list[dict[str, Any]], solo: float, before: dict[tuple[str, str], float],
            after: dict[tuple[str, str], float]) -> dict[str, Any]:
    attempts = by_category(before, after, "calls")
    throttled = by_category(before, after, "throttles")
    accepted = {c: n - throttled.get(c, 0.0) for c, n in attempts.items()}
    floor, binding = floor_seconds(accepted)
    t0 = min(v["created_at"] for v in views)
    wall = max(v["ended_at"] or t0 for v in views) - t0
    failed = [v for v in views if v["status"] != "SUCCESS"]
    late = lateness([v for v in views if v["ended_at"] is not None], solo)
    return {
        "deploys": len(views), "failed": len(failed),
        "failures": [f"{v['status']}: {v['error']}" for v in failed[:3]],
        "wall_s": round(wall, 1), "floor_s": round(floor, 1), "floor_category": binding,
        "wall_over_floor_percent": round(100 * (wall / floor - 1), 1) if floor else None,
        "solo_s": round(solo, 2),
        "lateness_s": {"p50": round(pct(late, 50), 2), "p99": round(pct(late, 99), 2),
                       "max": round(max(late), 2),
                       f"over_{LATE:.0f}s": sum(1 for x in late if x > LATE),
                       "latest": latest(late)},
        "accepted_calls": {c: int(n) for c, n in accepted.items()},
        "throttled": {c: int(n) for c, n in throttled.items()},
    }


async def run_batch(args: argparse.Namespace, children: Children) -> dict[str, Any]:
    poll = parse_duration(args.poll)
    endpoint = start_sandbox(children, args.tick)
    network = {r: seed_network(endpoint, r, "bench-pacing" if r == REGION else "bench-solo")
               for r in (REGION, SOLO_REGION)}
    nets = {r: (n.subnets, n.security_group) for r, n in network.items()}
    children.manager = ManagerProcess(children.workdir)
    await asyncio.to_thread(children.manager.start)
    async with children.manager.api() as client:
        api = ManagerApi(client)
        health = f"http://127.0.0.1:{free_port()}"
        start_delegate(children, children.manager.url, await api.create_token("acme"),
                       endpoint, min(args.deploys, DELEGATE_LIMIT),
                       int(health.rsplit(":", 1)[1]))
        await wait_for(lambda: _connected(api), timeout=60, what="the delegate to register")
        solo = await solo_seconds(api, nets[SOLO_REGION], poll)
        before = await aws_calls(health)
        tasks = [deploy_task(REGION, "bench-pacing", f"svc-{i:04d}", nets[REGION], poll)
                 for i in range(args.deploys)]
        ids = await submit_all(api, tasks)
        # Generous: twice the RegisterTaskDefinition floor at the published rate, and more.
        await wait_all_finished(api, timeout=2 * args.deploys + 900)
        views = await fetch_all(api, ids)
        after = await aws_calls(health)
    result = figures(views, solo, before, after)
    result.update(poll_s=poll, tick_s=args.tick, cores=os.cpu_count())
    return result


async def _connected(api: ManagerApi) -> bool:
    return any(d["name"] == "bench-pacing" and d["state"] == "connected"
               for d in await api.delegates())


@contextmanager
def stack() -> Iterator[Children]:
    with tempfile.TemporaryDirectory(prefix="ecs-pacing-") as tmp:
        children = Children(Path(tmp))
        try:
            yield children
        finally:
            # Always, on success, failure or Ctrl-C: no child outlives the bench.
            children.stop()


def report(r: dict[str, Any]) -> None:
    late = r["lateness_s"]
    print(f"{r['deploys']} ecs.rolling_deploy through one delegate, pollInterval "
          f"{r['poll_s']}s, sandbox tick {r['tick_s']}s, {r['cores']} cores")
    print(f"  failed: {r['failed']}")
    for failure in r["failures"]:
        print(f"    {failure}")
    over = r["wall_over_floor_percent"]
    print(f"  wall {r['wall_s']}s vs floor {r['floor_s']}s ({r['floor_category']}): "
          + (f"{over}% over" if over is not None else "no floor (every call in a burst)"))
    print(f"  lateness vs own earliest (solo deploy {r['solo_s']}s): p50 {late['p50']}s, "
          f"p99 {late['p99']}s, max {late['max']}s, over 5 s: {late['over_5s']}; latest "
          f"(rank by submission): {late['latest']}")
    print(f"  accepted calls: {r['accepted_calls']}")
    print(f"  throttled answers: {r['throttled'] or 'none'}")
    print(f"  children's exit codes: {r['exit_codes']}; delegate log: "
          f"{r['unclosed']} 'Unclosed', {r['tracebacks']} tracebacks")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--deploys", type=int, default=120)
    parser.add_argument("--poll", default="1s", help="pollInterval of every deploy")
    parser.add_argument("--tick", type=float, default=0.2, help="sandbox simulator tick")
    parser.add_argument("-o", "--output", choices=["text", "json"], default="text")
    args = parser.parse_args()
    with stack() as children:
        result = asyncio.run(run_batch(args, children))
    log = children.delegate_log()
    result.update(exit_codes=children.exit_codes, unclosed=log.count("Unclosed"),
                  tracebacks=log.count("Traceback"))
    if args.output == "json":
        print(json.dumps(result))
    else:
        report(result)


if __name__ == "__main__":
    main()
