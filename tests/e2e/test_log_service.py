"""LOG_STREAMING_SERVICE_URL: task messages over the manager's HTTP log service, complete
and in order, also across a dropped connection (issue: executions, file store, API)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from testkit.stack import (
    DelegateRunner,
    ManagerApi,
    ManagerProcess,
    gate,
    log_texts,
    running_manager,
)


async def test_logs_arrive_complete_through_the_log_service_across_a_restart(
        api: ManagerApi, manager: ManagerProcess, token: str) -> None:
    n = 5000
    async with DelegateRunner(manager.url, token, tags=("x",),
                              log_streaming_service_url=manager.url) as d:
        await d.registered()
        assert d.delegate.log_service is not None
        task_id = await api.submit({"type": "test.flood", "selectors": ["x"],
                                    "params": {"lines": n, "pause_every": 1000,
                                               "gate_at": 3000}})
        reached, opened = gate(task_id)
        await asyncio.wait_for(reached.wait(), 20)
        # Both paths go down at once: the HTTP posts fail and are retried, the
        # websocket reconnects; nothing may be lost or doubled.
        await asyncio.to_thread(manager.kill)
        await asyncio.to_thread(manager.start)
        opened.set()
        done = await api.wait_finished(task_id, timeout=60)
        assert d.delegate.log_service.posts > 0  # the HTTP path carried them
        assert not d.delegate.session.send_task_messages
    assert done["status"] == "SUCCESS"
    entries = await api.logs(task_id)
    assert [t for t in log_texts(entries) if t.startswith("line ")] == \
        [f"line {i:06d}" for i in range(n)]
    assert len([e for e in entries if e.get("kind") == "result"]) == 1


async def test_megabytes_of_logs_go_in_posts_the_log_service_accepts(
        tmp_path: Path) -> None:
    n, width = 300, 60_000  # ~18 MB, more than the manager takes in one POST (16 MiB)
    async with running_manager(tmp_path, extra_args=("--max-log-bytes", str(64 << 20))) \
            as manager, manager.api() as client:
        api = ManagerApi(client)
        token = await api.create_token("acme")
        async with DelegateRunner(manager.url, token, tags=("x",),
                                  log_streaming_service_url=manager.url) as d:
            await d.registered()
            task_id = await api.submit({"type": "test.flood", "selectors": ["x"],
                                        "params": {"lines": n, "width": width,
                                                   "pause_every": 0}})
            done = await api.wait_finished(task_id, timeout=60)
            assert d.delegate.log_service is not None
            assert d.delegate.log_service.failures == 0
        assert done["status"] == "SUCCESS"
        lines = [t for t in log_texts(await api.logs(task_id)) if t.startswith("line ")]
    assert [t[:11] for t in lines] == [f"line {i:06d}" for i in range(n)]
