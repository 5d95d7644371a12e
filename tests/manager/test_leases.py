"""Leases against outages and frozen delegates (issue 16): a manager outage longer than
the lease loses nothing, a late result is kept and flagged, a silent session is closed
and its assigned work goes back to the queue."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from manager.app import ManagerServer
from manager.leases import expiries
from manager.settings import Settings
from testkit.stack import DelegateRunner, gate, wait_for
from tests.manager.conftest import ADMIN, SECRET_KEY, FakeDelegate, Manager
from wire.protocol import Accept, LogLine, LogPayload, Pull, ResultPayload, TaskStatus


def _log(text: str) -> LogPayload:
    return LogPayload(unit="Deploy", lines=[LogLine(ts=datetime.now(UTC), text=text)])


def _settings(db: Path, **overrides: Any) -> Settings:
    return Settings(db_path=db, admin_token=ADMIN, secret_key=SECRET_KEY,
                    watchdog_interval=0.05, **overrides)


async def test_a_manager_outage_longer_than_the_lease_loses_nothing(tmp_path: Path) -> None:
    # Lease 0.5 s, the delegate's backoff capped at 1.5 s: a grace of 2 s covers it.
    settings = _settings(tmp_path / "m.db", lease_ttl=0.5, heartbeat_interval=0.2,
                         reconnect_grace=2.0)
    server = ManagerServer(settings)
    url = await server.start()
    token = await _token(url)
    async with DelegateRunner(url, token, name="d1", tags=("a",), reconnect_max=1.5) as d:
        await d.registered()
        task_id = await _submit(url, {"type": "test.flood", "selectors": ["a"],
                                      "params": {"lines": 300, "gate_at": 150,
                                                 "pause_every": 0}})
        reached, opened = gate(task_id)
        await asyncio.wait_for(reached.wait(), 20)
        await server.stop()
        opened.set()  # the task finishes while the manager is away
        await wait_for(lambda: d.delegate.runner.stats.finished, what="task to finish")
        await asyncio.sleep(2.0)  # the outage itself: longer than the lease
        server = ManagerServer(settings, port=int(url.rsplit(":", 1)[1]))
        await server.start()
        try:
            done = await _wait_finished(url, task_id)
            lines = await _lines(url, task_id)
        finally:
            await d.stop()
            await server.stop()
    assert done["status"] == "SUCCESS" and not done["late_result"], done
    assert lines == [f"line {i:06d}" for i in range(300)]


async def test_a_late_result_after_lost_is_kept_and_flagged(make_manager) -> None:  # type: ignore[no-untyped-def]
    m: Manager = make_manager(lease_ttl=0.3, reconnect_grace=0)
    await m.start()
    token = await m.token()
    d = FakeDelegate(m, token)
    await d.connect()
    task_id = await m.submit(selectors=["a"])
    await d.send(Pull(free_slots=1))
    await d.next("assign")
    await d.send(Accept(task_id=task_id))
    await d.msg(task_id, 1, _log("before"))
    assert (await d.next("ack")).seq == 1
    await d.close()
    await m.wait_status(task_id, "LOST")
    # The same instance comes back: it may deliver the rest.
    d = FakeDelegate(m, token, instance_id=d.instance_id)
    registered = await d.connect(running=[task_id])
    assert registered.acked == {task_id: 1} and registered.cancel == {}
    await d.msg(task_id, 2, _log("after"))
    await d.msg(task_id, 3, ResultPayload(status=TaskStatus.SUCCESS, output={"k": "v"}))
    await wait_for(lambda: _acked(d, task_id, 3), what="ack 3")
    t = await m.task(task_id)
    assert t["status"] == "SUCCESS" and t["late_result"] is True and t["output"] == {"k": "v"}
    texts = [e["text"] for e in await m.logs(task_id) if e["kind"] == "log"]
    assert texts == ["before", "after"]
    await d.close()
    await m.stop()


async def test_a_silent_session_is_closed_and_its_assigned_task_requeued(
        make_manager) -> None:  # type: ignore[no-untyped-def]
    m: Manager = make_manager(lease_ttl=0.5, reconnect_grace=0)
    await m.start()
    token = await m.token()
    frozen = FakeDelegate(m, token, name="frozen")
    await frozen.connect()
    task_id = await m.submit(selectors=["a"])
    await frozen.send(Pull(free_slots=1))
    assert (await frozen.next("assign")).task.task_id == task_id
    # ... and now it sends nothing at all, though its socket stays open.
    disconnect = await frozen.next("disconnect", timeout=10)
    assert "nothing received for longer than the lease" in disconnect.reason
    await wait_for(lambda: frozen.close_code is not None, what="the socket to close")
    assert frozen.close_code == 4408
    t = await m.wait_status(task_id, "QUEUED")
    assert t["delegate_id"] is None
    states = {x["name"]: x["state"] for x in
              (await m.http.get("/api/delegates")).json()["delegates"]}
    assert states["frozen"] == "disconnected"
    alive = FakeDelegate(m, token, name="alive")
    await alive.connect()
    await alive.send(Pull(free_slots=1))
    assert (await alive.next("assign")).task.task_id == task_id
    await alive.close()
    await frozen.close()
    await m.stop()


def test_no_lease_expires_before_the_delegates_could_reconnect() -> None:
    rows = [{"task_id": "t1", "delegate_id": "d1", "started_at": 100.0, "timeout": 3600.0,
             "name": "d", "last_heartbeat": None}]
    # Manager started at 100 with lease 30 and grace 60: nothing before 190.
    assert expiries(rows, {}, t=189.0, ttl=30.0, not_before=190.0) == []
    assert [e.status for e in expiries(rows, {}, t=191.0, ttl=30.0, not_before=190.0)] == \
        [TaskStatus.LOST]
    # Seen recently: the lease runs from the last frame.
    assert expiries(rows, {"d1": 180.0}, t=205.0, ttl=30.0, not_before=190.0) == []
    timed_out = expiries([{**rows[0], "timeout": 10.0}], {"d1": 200.0}, t=205.0, ttl=30.0,
                         not_before=0.0)
    assert [e.status for e in timed_out] == [TaskStatus.TIMED_OUT]
    # A heartbeat another replica stored counts as much as a frame seen here.
    assert expiries([{**rows[0], "last_heartbeat": 180.0}], {}, t=205.0, ttl=30.0,
                    not_before=0.0) == []


async def _acked(d: FakeDelegate, task_id: str, seq: int) -> bool:
    return any(getattr(msg, "type", "") == "ack" and msg.task_id == task_id and msg.seq >= seq
               for msg in d.received)


# ---------------------------------------------------------------------- small HTTP helpers


def _client(url: str) -> Any:
    import httpx

    return httpx.AsyncClient(base_url=url, headers={"Authorization": f"Bearer {ADMIN}"})


async def _token(url: str) -> str:
    async with _client(url) as c:
        r = await c.post("/api/tokens", json={"account_id": "acme"})
        return str(r.json()["token"])


async def _submit(url: str, body: dict[str, Any]) -> str:
    async with _client(url) as c:
        r = await c.post("/api/tasks", json=body)
        assert r.status_code == 201, r.text
        return str(r.json()["task_id"])


async def _wait_finished(url: str, task_id: str) -> dict[str, Any]:
    async with _client(url) as c:
        async def check() -> dict[str, Any] | None:
            t: dict[str, Any] = (await c.get(f"/api/tasks/{task_id}")).json()
            return t if t["status"] not in ("QUEUED", "ASSIGNED", "RUNNING") else None
        result: dict[str, Any] = await wait_for(check, timeout=30, what="task to finish")
        return result


async def _lines(url: str, task_id: str) -> list[str]:
    import json

    async with _client(url) as c:
        r = await c.get(f"/api/tasks/{task_id}/logs")
        return [e["text"] for e in map(json.loads, r.text.splitlines()) if e["kind"] == "log"]
