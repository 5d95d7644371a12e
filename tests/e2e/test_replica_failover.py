"""Issue 14's fault test: three manager replicas on one PostgreSQL database behind a real
HAProxy, two real delegates connected through it, 300 tasks submitted to random replicas,
and one replica — one that holds a delegate's websocket — killed with SIGKILL half-way.
Every task runs exactly once (counted where the handler runs, not where the manager
believes), every log line is stored once, and every result is recorded."""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from testkit.loadbalancer import LoadBalancer
from testkit.stack import (
    RUNS,
    DelegateRunner,
    ManagerApi,
    ManagerProcess,
    log_texts,
    running_replicas,
    wait_for,
)

pytestmark = pytest.mark.timeout(240)
TASKS = 300
FINISHED = {"SUCCESS", "FAILED", "ABORTED", "TIMED_OUT", "LOST"}


class Submitter:
    """Sends each task to a random live replica with an Idempotency-Key; a replica that
    stops answering is dropped and the same request (same key) goes to another, so a
    submission whose answer was lost is never made twice."""

    def __init__(self, replicas: list[ManagerProcess]) -> None:
        self.clients = {r.url: r.api() for r in replicas}
        self.rng = random.Random(14)

    async def submit(self, body: dict[str, Any]) -> str:
        key = str(uuid.uuid4())
        for _attempt in range(20):
            url = self.rng.choice(sorted(self.clients))
            try:
                r = await self.clients[url].post("/api/tasks", json=body,
                                                 headers={"Idempotency-Key": key})
            except httpx.TransportError:
                await self.clients.pop(url).aclose()
                continue
            if r.status_code == 503:
                continue
            assert r.status_code in (200, 201), r.text
            return str(r.json()["task_id"])
        raise AssertionError(f"no replica took the task {body}")

    def drop(self, url: str) -> None:
        client = self.clients.pop(url, None)
        if client is not None:
            asyncio.get_running_loop().create_task(client.aclose())

    async def close(self) -> None:
        for client in self.clients.values():
            await client.aclose()


async def test_three_replicas_lose_one_and_nothing_is_lost_or_doubled(tmp_path: Path) -> None:
    args = ("--heartbeat-interval", "0.5s")
    async with running_replicas(tmp_path, 3, extra_args=args) as replicas:
        backends = [f"m{i}=127.0.0.1:{r.port}" for i, r in enumerate(replicas, 1)]
        with LoadBalancer(backends, workdir=tmp_path / "haproxy") as lb:
            submitter = Submitter(replicas)
            async with replicas[0].api() as admin:
                token = await ManagerApi(admin).create_token("acme")
            async with DelegateRunner(lb.url, token, name="d1", tags=("r",), capacity=8) as d1, \
                    DelegateRunner(lb.url, token, name="d2", tags=("r",), capacity=8) as d2:
                await d1.registered()
                await d2.registered()
                ids: dict[str, int] = {}
                for n in range(TASKS):
                    if n == TASKS // 2:
                        victim = _holder(lb, replicas)
                        killed_at = time.time()
                        await asyncio.to_thread(victim.kill)
                        submitter.drop(victim.url)
                    task_id = await submitter.submit({
                        "type": "test.echo", "selectors": ["r"],
                        "params": {"n": n, "delay": 0.01}})
                    ids[task_id] = n
                survivor = next(r for r in replicas if r.proc is not None)
                async with survivor.api() as c:
                    api = ManagerApi(c)
                    tasks = await _all_finished(api, set(ids))
                    logs = {t: log_texts(await api.logs(t)) for t in ids}
                    delegates = await api.delegates()
            await submitter.close()
    assert len(ids) == TASKS  # the idempotency keys kept retried submissions single
    not_ok = {t: (tasks[t]["status"], tasks[t]["error"]) for t in ids
              if tasks[t]["status"] != "SUCCESS"}
    assert not not_ok, not_ok
    assert {t: RUNS.get(t, 0) for t in ids if RUNS.get(t, 0) != 1} == {}
    for task_id, n in ids.items():
        assert tasks[task_id]["output"]["echo"]["n"] == n
        assert logs[task_id] == [f"params {{'n': {n}, 'delay': 0.01}}"], (task_id,
                                                                         logs[task_id])
    moved = [d for d in delegates if d["state"] == "connected"
             and d["connected_at"] > killed_at]
    assert moved, f"no delegate had to move: {delegates}"


def _holder(lb: LoadBalancer, replicas: list[ManagerProcess]) -> ManagerProcess:
    """A replica holding a delegate's websocket (the failure the test is about)."""
    sessions = lb.sessions()
    name = max(sessions, key=lambda s: sessions[s])
    assert sessions[name] > 0, sessions
    return replicas[int(name[1:]) - 1]


async def _all_finished(api: ManagerApi, ids: set[str]) -> dict[str, dict[str, Any]]:
    seen: dict[str, dict[str, Any]] = {}

    async def check() -> bool:
        r = await api.client.get("/api/tasks", params={"limit": 1000})
        r.raise_for_status()
        for t in r.json()["tasks"]:
            if t["task_id"] in ids:
                seen[t["task_id"]] = t
        return len(seen) == len(ids) and all(t["status"] in FINISHED for t in seen.values())

    await wait_for(check, timeout=120, interval=0.25, what="every task to finish")
    return seen
