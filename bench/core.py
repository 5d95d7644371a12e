"""Delegate core figures (issue "Delegate core and manager protocol"):

* submit -> the task's coroutine starting, p50/p99 over N tasks on loopback;
* abort latency (API call -> coroutine cancelled, and -> manager shows ABORTED);
* RSS of an idle delegate process;
* time from process start to registered.

Run: ``python bench/core.py [--tasks 1000]``. Figures, not assertions.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from agent.context import TaskContext, TaskType
from testkit.stack import (
    DelegateRunner,
    ManagerApi,
    running_manager,
    test_registry,
    wait_for,
)

STARTED: dict[str, float] = {}
CANCELLED: dict[str, float] = {}
EVENTS: dict[str, asyncio.Event] = {}


async def _mark(ctx: TaskContext) -> dict[str, Any]:
    STARTED[ctx.task_id] = time.perf_counter()
    EVENTS.setdefault(ctx.task_id, asyncio.Event()).set()
    if ctx.params.get("hang"):
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            CANCELLED[ctx.task_id] = time.perf_counter()
            raise
    return {}


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


async def latency(api: ManagerApi, n: int) -> dict[str, float]:
    samples: list[float] = []
    for _ in range(n):
        t0 = time.perf_counter()
        r = await api.client.post("/api/tasks", json={"type": "bench.mark", "selectors": ["b"]})
        task_id = r.json()["task_id"]
        event = EVENTS.setdefault(task_id, asyncio.Event())
        await asyncio.wait_for(event.wait(), 10)
        samples.append((STARTED[task_id] - t0) * 1000)
    return {"p50_ms": statistics.median(samples), "p99_ms": pct(samples, 99),
            "max_ms": max(samples), "n": n}


async def abort_latency(api: ManagerApi, rounds: int = 20) -> dict[str, float]:
    cancel_ms, final_ms = [], []
    for _ in range(rounds):
        task_id = await api.submit({"type": "bench.mark", "selectors": ["b"],
                                    "params": {"hang": True}})
        await asyncio.wait_for(EVENTS.setdefault(task_id, asyncio.Event()).wait(), 10)
        t0 = time.perf_counter()
        await api.abort(task_id)
        await wait_for(lambda tid=task_id: tid in CANCELLED, timeout=10, interval=0.0005)
        cancel_ms.append((CANCELLED[task_id] - t0) * 1000)
        await api.wait_finished(task_id)
        final_ms.append((time.perf_counter() - t0) * 1000)
    return {"to_cancelled_p50_ms": statistics.median(cancel_ms),
            "to_ABORTED_visible_p50_ms": statistics.median(final_ms)}


async def idle_process(manager_url: str, token: str, api: ManagerApi) -> dict[str, float]:
    env = {**os.environ, "ACCOUNT_ID": "acme", "DELEGATE_TOKEN": token,
           "DELEGATE_NAME": "bench-idle", "MANAGER_HOST_AND_PORT": manager_url,
           "LOG_FORMAT": "json"}
    t0 = time.perf_counter()
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "cli", "run", env=env,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)
    try:
        async def registered() -> bool:
            return any(d["name"] == "bench-idle" and d["state"] == "connected"
                       for d in await api.delegates())

        await wait_for(registered, timeout=30, interval=0.005)
        to_registered = time.perf_counter() - t0
        await asyncio.sleep(3)  # idle: what it holds when nothing happens
        rss_kb = 0
        status = await asyncio.to_thread(Path(f"/proc/{proc.pid}/status").read_text)
        for line in status.splitlines():
            if line.startswith("VmRSS:"):
                rss_kb = int(line.split()[1])
        return {"start_to_registered_s": to_registered, "idle_rss_mb": rss_kb / 1024}
    finally:
        proc.terminate()
        await asyncio.wait_for(proc.wait(), 10)


async def main() -> None:
    import logging

    import structlog

    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    parser = argparse.ArgumentParser()
    parser.add_argument("--tasks", type=int, default=1000)
    args = parser.parse_args()
    registry = test_registry()
    registry.register(TaskType(name="bench.mark", handler=_mark, summary="bench"))
    with tempfile.TemporaryDirectory() as tmp:
        async with running_manager(Path(tmp)) as manager, manager.api() as client:
            api = ManagerApi(client)
            token = await api.create_token("acme")
            async with DelegateRunner(manager.url, token, name="bench", tags=("b",),
                                      capacity=50, registry=registry) as d:
                await d.registered()
                await latency(api, 20)  # warm-up
                lat = await latency(api, args.tasks)
                ab = await abort_latency(api)
            idle = await idle_process(manager.url, token, api)
    print(f"submit -> coroutine start over {lat['n']:.0f} tasks: p50 {lat['p50_ms']:.2f} ms, "
          f"p99 {lat['p99_ms']:.2f} ms, max {lat['max_ms']:.2f} ms")
    print(f"abort: API call -> coroutine cancelled p50 {ab['to_cancelled_p50_ms']:.2f} ms; "
          f"-> ABORTED visible in the API p50 {ab['to_ABORTED_visible_p50_ms']:.2f} ms")
    print(f"idle delegate RSS: {idle['idle_rss_mb']:.1f} MB; process start -> registered: "
          f"{idle['start_to_registered_s']:.2f} s")


if __name__ == "__main__":
    asyncio.run(main())
