"""Two manager replicas on ONE PostgreSQL database behind the real HAProxy
(testkit.stack.running_replicas + testkit.loadbalancer): the replica holding a
delegate's websocket is killed with SIGKILL while the delegate runs a task; the delegate
comes back through the balancer to the other replica and the task's result and every
log line arrive once."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import httpx

from testkit.loadbalancer import REPLICA_HEADER, LoadBalancer
from testkit.stack import (
    ADMIN_TOKEN,
    DelegateRunner,
    ManagerApi,
    gate,
    log_texts,
    running_replicas,
    wait_for,
)


async def test_a_delegate_moves_to_the_other_replica_and_its_task_finishes(
        tmp_path: Path) -> None:
    args = ("--heartbeat-interval", "0.5s")
    async with running_replicas(tmp_path, 2, extra_args=args) as replicas:
        backends = [f"m{i}=127.0.0.1:{r.port}" for i, r in enumerate(replicas, 1)]
        with LoadBalancer(backends, workdir=tmp_path / "haproxy") as lb:
            async with httpx.AsyncClient(
                    base_url=lb.url, timeout=10,
                    headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}) as c:
                api = ManagerApi(c)
                token = await api.create_token("acme")
                async with DelegateRunner(lb.url, token, tags=("r",)) as d:
                    await d.registered()
                    [holder] = [name for name, n in lb.sessions().items() if n == 1]
                    victim = replicas[int(holder[1:]) - 1]
                    task_id = await api.submit({
                        "type": "test.flood", "selectors": ["r"],
                        "params": {"lines": 300, "gate_at": 150, "pause_every": 0}})
                    reached, opened = gate(task_id)
                    await asyncio.wait_for(reached.wait(), 20)

                    killed_at = time.time()
                    await asyncio.to_thread(victim.kill)
                    opened.set()  # the task goes on while its replica is gone

                    async def moved() -> bool:
                        [me] = await api.delegates()
                        return me["state"] == "connected" and me["connected_at"] > killed_at

                    await wait_for(moved, timeout=10, what="the delegate to register again")
                    moved_after = time.time() - killed_at
                    done = await api.wait_finished(task_id, timeout=30)
                    lines = log_texts(await api.logs(task_id))
                    answered_by = {(await c.get("/healthz")).headers[REPLICA_HEADER]
                                   for _ in range(4)}
    assert done["status"] == "SUCCESS", done
    assert lines == [f"line {i:06d}" for i in range(300)]
    assert answered_by == {"m1", "m2"} - {holder}
    assert moved_after < 5.0, f"re-registered {moved_after:.2f}s after the kill"
