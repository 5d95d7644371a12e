"""Manager replicas (issue 14): the same three figures on SQLite, on PostgreSQL with one
manager, and on PostgreSQL with three replicas behind HAProxy (testkit/loadbalancer.py).

* submit -> task start, p50/p99: bench/core.py's method (one task at a time, from the
  API call to the handler's first line on the delegate), each task submitted to a
  replica picked at random;
* dispatched per second at saturation: D delegates of C slots each, a burst of N cheap
  tasks submitted concurrently (64 requests in flight) to random replicas; the rate is
  N / (last task's start on a delegate - first submit); beside it, accepted/s, how fast
  the API took the N submissions (when the two are equal, submission is the limit, not
  dispatch), and queued drained/s: N tasks submitted before any delegate connected,
  handed out once they come (first start to last), so submission is out of the way.
  Each task's runs are counted on the delegates, so a task started twice (or never)
  shows;
* reconnect after SIGKILL: the replica holding the most delegates is killed; the time
  until every delegate that was on it is registered again, seen through the API's
  delegate list (a new ``connected_at``). With one manager there is nowhere else to go:
  it is started again at once on the same port, and the figure includes its start.

Delegates are real (agent.app.Delegate on real websockets, in this process, as in
bench/core.py); managers, PostgreSQL (testkit/postgres.py) and HAProxy are real child
processes. Delegates reach the managers through HAProxy when there are replicas.

Run: ``python bench/replicas.py [--tasks 1000] [--latency 200] [--delegates 8]
[--slots 25] [--configs sqlite,pg1,pg3] [-o json]``. Figures, not assertions.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import random
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx

from agent.context import TaskContext, TaskRegistry, TaskType
from bench.core import pct
from testkit.loadbalancer import LoadBalancer
from testkit.stack import (
    ADMIN_TOKEN,
    DelegateRunner,
    ManagerApi,
    ManagerProcess,
    running_replicas,
    test_registry,
    wait_for,
)

CONFIGS = {"sqlite": "SQLite, 1 manager", "pg1": "PostgreSQL, 1 manager",
           "pg3": "PostgreSQL, 3 replicas + HAProxy"}
STARTED: dict[str, float] = {}
RUNS: dict[str, int] = {}


async def _start(ctx: TaskContext) -> dict[str, Any]:
    STARTED.setdefault(ctx.task_id, time.perf_counter())
    RUNS[ctx.task_id] = RUNS.get(ctx.task_id, 0) + 1
    return {}


def registry() -> TaskRegistry:
    reg = test_registry(include_builtin=False)
    reg.register(TaskType(name="bench.start", handler=_start, summary="bench"))
    return reg


@dataclass
class Setup:
    """The managers of one configuration, and the address delegates use."""

    name: str
    managers: list[ManagerProcess]
    lb: LoadBalancer | None = None
    clients: list[httpx.AsyncClient] = field(default_factory=list)

    @property
    def front(self) -> str:
        return self.lb.url if self.lb else self.managers[0].url

    def client(self) -> httpx.AsyncClient:
        """A replica's API, picked at random (as clients behind DNS would spread)."""
        return random.choice(self.clients)


def _client(url: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=url, timeout=30,
                             limits=httpx.Limits(max_connections=64),
                             headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})


@contextlib.asynccontextmanager
async def configuration(name: str, workdir: Path, pg: Any) -> AsyncIterator[Setup]:
    folder = workdir / name
    folder.mkdir()
    db = str(folder / "manager.db") if name == "sqlite" else \
        await asyncio.to_thread(pg.database, f"bench_{name}")
    async with contextlib.AsyncExitStack() as stack:
        managers = await stack.enter_async_context(
            running_replicas(folder, 3 if name == "pg3" else 1, db=db))
        setup = Setup(name, managers)
        if name == "pg3":
            setup.lb = LoadBalancer([f"m{i}=127.0.0.1:{m.port}"
                                     for i, m in enumerate(managers, 1)],
                                    workdir=folder / "haproxy")
            await asyncio.to_thread(setup.lb.start)
            stack.callback(setup.lb.stop)
        for m in managers:
            setup.clients.append(await stack.enter_async_context(_client(m.url)))
        yield setup


async def latency(setup: Setup, n: int) -> dict[str, float]:
    samples: list[float] = []
    for _ in range(n):
        t0 = time.perf_counter()
        task_id = await ManagerApi(setup.client()).submit(
            {"type": "bench.start", "selectors": ["b"]})
        await wait_for(lambda tid=task_id: tid in STARTED, timeout=10, interval=0.0005,
                       what=f"task {task_id} to start")
        samples.append((STARTED[task_id] - t0) * 1000)
    return {"p50_ms": statistics.median(samples), "p99_ms": pct(samples, 99), "n": n}


async def submit_all(setup: Setup, n: int, in_flight: int = 64) -> tuple[list[str], float]:
    """N submissions, ``in_flight`` at a time, each to a random replica; (ids, when the
    first was sent)."""
    gate = asyncio.Semaphore(in_flight)
    ids: list[str] = []

    async def one() -> None:
        async with gate:
            ids.append(await ManagerApi(setup.client()).submit(
                {"type": "bench.start", "selectors": ["b"]}))

    t0 = time.perf_counter()
    await asyncio.gather(*(one() for _ in range(n)))
    return ids, t0


async def started(ids: list[str]) -> tuple[list[float], int, int]:
    """Each task's start (those that started within 120 s), how many never started, how
    many started twice."""
    with contextlib.suppress(AssertionError):  # counted as never started
        await wait_for(lambda: all(t in STARTED for t in ids), timeout=120, interval=0.01,
                       what="every task to start")
    starts = [STARTED[t] for t in ids if t in STARTED]
    return starts, len(ids) - len(starts), sum(1 for t in ids if RUNS.get(t, 0) > 1)


async def burst(setup: Setup, n: int) -> dict[str, float]:
    ids, t0 = await submit_all(setup, n)
    submitted = time.perf_counter() - t0
    starts, never, twice = await started(ids)
    wall = (max(starts) - t0) if starts else float("nan")
    return {"tasks": n, "dispatched_per_s": len(starts) / wall, "wall_s": wall,
            "submit_s": submitted, "never_started": never, "started_twice": twice}


async def drain(ids: list[str]) -> dict[str, float]:
    """Tasks queued before any delegate connected: how fast they are handed out once
    delegates come (first start to last), with submission out of the way."""
    starts, never, twice = await started(ids)
    span = (max(starts) - min(starts)) if len(starts) > 1 else float("nan")
    return {"tasks": len(ids), "drained_per_s": len(starts) / span, "never_started": never,
            "started_twice": twice}


async def _connected_since(api: ManagerApi, since: float) -> set[str]:
    return {d["name"] for d in await api.delegates()
            if d["state"] == "connected" and (d["connected_at"] or 0) > since}


def _placement(setup: Setup, delegates: list[DelegateRunner]) -> dict[str, set[str]]:
    """Which delegates each replica holds (``m1``, ``m2``, ...): HAProxy's routes, matched
    by the websockets' local ports; with one manager, all of them on it."""
    names = {d.delegate.settings.delegate_name: d for d in delegates}
    if setup.lb is None:
        return {"m1": set(names)}
    routes = setup.lb.routes()
    held: dict[str, set[str]] = {}
    for name, d in names.items():
        # The agent keeps its websocket to itself; its local port is all this needs.
        ws = getattr(d.delegate.session, "_ws", None)
        if ws is not None and ws.local_address[1] in routes:
            held.setdefault(routes[ws.local_address[1]], set()).add(name)
    return held


async def reconnect(setup: Setup, delegates: list[DelegateRunner]) -> dict[str, float]:
    """Kill the replica holding the most delegates; time until they are all back."""
    held = _placement(setup, delegates)
    server = max(sorted(held), key=lambda s: len(held[s]))
    affected, victim = held[server], setup.managers[int(server[1:]) - 1]
    killed_at = time.time()
    t0 = time.perf_counter()
    await asyncio.to_thread(victim.kill)
    restart = 0.0
    if setup.lb is None:  # one manager: nowhere else to go, so it comes back at once
        await asyncio.to_thread(victim.start)
        restart = time.perf_counter() - t0
    async with _client(setup.front) as api_client:
        api = ManagerApi(api_client)
        await wait_for(lambda: _all_back(api, killed_at, affected), timeout=60,
                       interval=0.01, what=f"{sorted(affected)} to register again")
    return {"delegates_moved": len(affected), "reconnect_s": time.perf_counter() - t0,
            "restart_s": restart}


async def _all_back(api: ManagerApi, since: float, names: set[str]) -> bool:
    with contextlib.suppress(httpx.HTTPError):
        return names <= await _connected_since(api, since)
    return False


async def measure(setup: Setup, args: argparse.Namespace) -> dict[str, Any]:
    async with _client(setup.front) as c:
        token = await ManagerApi(c).create_token("acme")
    reg = registry()
    queued, _ = await submit_all(setup, args.tasks)  # no delegate yet: they wait
    async with contextlib.AsyncExitStack() as stack:
        delegates = [await stack.enter_async_context(
            DelegateRunner(setup.front, token, name=f"bench-{i}", tags=("b",),
                           capacity=args.slots, registry=reg))
            for i in range(1, args.delegates + 1)]
        for d in delegates:
            await d.registered()
        queue = await drain(queued)
        await latency(setup, 10)  # warm-up
        lat = await latency(setup, args.latency)
        sat = await burst(setup, args.tasks)
        rec = await reconnect(setup, delegates)
    return {"config": setup.name, "label": CONFIGS[setup.name], "latency": lat,
            "saturation": sat, "queued": queue, "reconnect": rec}


async def run_one(name: str, workdir: Path, pg: Any,
                  args: argparse.Namespace) -> dict[str, Any]:
    try:
        async with configuration(name, workdir, pg) as setup:
            return await measure(setup, args)
    except (RuntimeError, AssertionError, httpx.HTTPError) as exc:
        # e.g. a second manager refused on one database: say so in the table, go on
        reason = str(exc).strip().splitlines()[-1] if str(exc).strip() else repr(exc)
        return {"config": name, "label": CONFIGS[name], "error": reason}


def table(results: list[dict[str, Any]]) -> str:
    head = ("| configuration | submit->start p50 / p99 | dispatched/s (N) | accepted/s "
            "| queued drained/s | never / twice | reconnect after SIGKILL |\n"
            "|---|---|---|---|---|---|---|")
    rows = [head]
    for r in results:
        if "error" in r:
            rows.append(f"| {r['label']} | not measured: {r['error']} | | | | | |")
            continue
        lat, sat, queue, rec = r["latency"], r["saturation"], r["queued"], r["reconnect"]
        never = sat["never_started"] + queue["never_started"]
        twice = sat["started_twice"] + queue["started_twice"]
        moved = (f"{rec['reconnect_s']:.2f} s ({rec['delegates_moved']} delegates"
                 + (f", incl. {rec['restart_s']:.2f} s restart)" if rec["restart_s"]
                    else ")"))
        rows.append(f"| {r['label']} | {lat['p50_ms']:.1f} / {lat['p99_ms']:.1f} ms | "
                    f"{sat['dispatched_per_s']:.0f} ({sat['tasks']}) | "
                    f"{sat['tasks'] / sat['submit_s']:.0f} | {queue['drained_per_s']:.0f} | "
                    f"{never} / {twice} | {moved} |")
    return "\n".join(rows)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=1000, help="tasks in the burst")
    parser.add_argument("--latency", type=int, default=200, help="tasks, one at a time")
    parser.add_argument("--delegates", type=int, default=8)
    parser.add_argument("--slots", type=int, default=25, help="each delegate's capacity")
    parser.add_argument("--configs", default="sqlite,pg1,pg3",
                        help=f"comma-separated, of {', '.join(CONFIGS)}")
    parser.add_argument("-o", "--output", choices=("table", "json"), default="table")
    args = parser.parse_args()
    unknown = set(args.configs.split(",")) - set(CONFIGS)
    if unknown:
        parser.error(f"--configs: unknown {', '.join(sorted(unknown))}; "
                     f"choose from {', '.join(CONFIGS)}")
    return args


async def main() -> None:
    import logging

    import structlog

    from testkit.postgres import postgres_server

    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.ERROR))
    args = parse_args()
    names = args.configs.split(",")
    results = []
    with tempfile.TemporaryDirectory() as tmp, contextlib.ExitStack() as stack:
        pg = stack.enter_context(postgres_server()) if set(names) - {"sqlite"} else None
        for name in names:
            results.append(await run_one(name, Path(tmp), pg, args))
    if args.output == "json":
        print(json.dumps(results, indent=2))
    else:
        print(table(results))


if __name__ == "__main__":
    asyncio.run(main())
