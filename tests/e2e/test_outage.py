"""A manager outage longer than the lease while a task finishes, with the real manager
process and a real delegate: the result and every line arrive, and the task is not LOST
(issue 16)."""

from __future__ import annotations

import asyncio
import random
from pathlib import Path

import pytest

from testkit.stack import (
    DelegateRunner,
    ManagerApi,
    gate,
    log_texts,
    running_manager,
    wait_for,
)


async def test_an_outage_longer_than_the_lease_loses_no_finished_work(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The backoff's jitter always draws its longest delay, so the delegate comes back
    # well after the lease has run out (about 3 s after the restart, with a 4 s cap).
    monkeypatch.setattr(random, "uniform", lambda low, high: high)
    monkeypatch.setattr(random, "random", lambda: 0.999)
    args = ("--lease-ttl", "1s", "--heartbeat-interval", "0.3s", "--reconnect-grace", "5s")
    async with running_manager(tmp_path, extra_args=args) as manager:
        async with manager.api() as client:
            token = await ManagerApi(client).create_token("acme")
        async with DelegateRunner(manager.url, token, tags=("o",), reconnect_max=4.0) as d:
            await d.registered()
            async with manager.api() as client:
                task_id = await ManagerApi(client).submit({
                    "type": "test.flood", "selectors": ["o"],
                    "params": {"lines": 400, "gate_at": 200, "pause_every": 0}})
            reached, opened = gate(task_id)
            await asyncio.wait_for(reached.wait(), 20)
            await asyncio.to_thread(manager.stop)
            opened.set()  # the task finishes while the manager is down
            await wait_for(lambda: d.delegate.runner.stats.finished, what="the task to end")
            await asyncio.sleep(2.5)  # the outage: longer than the lease
            await asyncio.to_thread(manager.start)  # same port, same database
            async with manager.api() as client:
                api = ManagerApi(client)
                done = await api.wait_finished(task_id, timeout=30)
                lines = log_texts(await api.logs(task_id))
    assert done["status"] == "SUCCESS" and done["late_result"] is False, done
    assert lines == [f"line {i:06d}" for i in range(400)]
