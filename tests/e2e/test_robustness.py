"""Bad input never takes the delegate down or loses a task: a fake manager (a real
websocket server in this test) sends garbage, oversized frames and unknown task types."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest
from websockets.asyncio.server import ServerConnection, serve

from testkit.stack import DelegateRunner, ManagerApi, ManagerProcess, log_texts, wait_for
from wire.protocol import (
    MAX_MESSAGE_BYTES,
    Assign,
    Registered,
    TaskMessage,
    TaskSpec,
    dump,
)

TOKEN = "edt.fake01.0123456789abcdefghijklmnopqrstuvwxyz0123456"


class FakeManager:
    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []
        self.connections = 0
        self.current: ServerConnection | None = None

    async def handler(self, ws: ServerConnection) -> None:
        self.connections += 1
        self.current = ws
        await ws.recv()  # register
        await ws.send(dump(Registered(protocol_version=1, delegate_id="dlg-fake",
                                      heartbeat_interval=30, lease_ttl=90)))
        async for raw in ws:
            msg = json.loads(raw)
            self.received.append(msg)
            if msg["type"] == "task_msg":
                await ws.send(json.dumps({"type": "ack", "task_id": msg["task_id"],
                                          "seq": msg["seq"]}))

    def results(self) -> dict[str, dict[str, Any]]:
        out = {}
        for m in self.received:
            if m["type"] == "task_msg" and m["payload"]["kind"] == "result":
                out[m["task_id"]] = m["payload"]
        return out


@pytest.fixture
async def fake() -> AsyncIterator[tuple[FakeManager, str]]:
    manager = FakeManager()
    async with serve(manager.handler, "127.0.0.1", 0, max_size=None) as server:
        port = server.sockets[0].getsockname()[1]
        yield manager, f"http://127.0.0.1:{port}"


async def test_garbage_from_the_manager_is_ignored_and_tasks_still_run(
        fake: tuple[FakeManager, str]) -> None:
    manager, url = fake
    async with DelegateRunner(url, TOKEN, tags=("x",)) as d:
        await d.registered()
        ws = manager.current
        assert ws is not None
        await ws.send("this is not json {")
        await ws.send(json.dumps({"type": "launch_missiles", "now": True}))
        await ws.send(json.dumps({"type": "ack", "task_id": 5}))  # wrong field type
        spec = TaskSpec(task_id="t-unknown", type="no.such.type")
        await ws.send(dump(Assign(task=spec)))
        await ws.send(dump(Assign(task=TaskSpec(task_id="t-ok", type="test.echo",
                                                params={"hello": "world"}))))
        await wait_for(lambda: {"t-unknown", "t-ok"} <= manager.results().keys(),
                       what="both results")
        assert not d.failed()
    results = manager.results()
    assert results["t-ok"]["status"] == "SUCCESS"
    assert results["t-unknown"]["status"] == "FAILED"
    assert "unknown task type 'no.such.type'" in results["t-unknown"]["error"]
    assert "test.echo" in results["t-unknown"]["error"]  # says what it can run


async def test_an_oversized_frame_costs_a_reconnect_not_the_process(
        fake: tuple[FakeManager, str]) -> None:
    manager, url = fake
    async with DelegateRunner(url, TOKEN, tags=("x",)) as d:
        await d.registered()
        ws = manager.current
        assert ws is not None
        await ws.send("x" * (MAX_MESSAGE_BYTES + 10))
        await wait_for(lambda: manager.connections >= 2 and d.delegate.session.registered
                       .is_set(), what="the delegate to reconnect")
        assert not d.failed()
        ws = manager.current
        assert ws is not None
        await ws.send(dump(Assign(task=TaskSpec(task_id="after", type="test.echo"))))
        await wait_for(lambda: "after" in manager.results(), what="a task after the reconnect")


async def test_task_secrets_are_masked_before_they_reach_the_manager(
        api: ManagerApi, manager: ManagerProcess, token: str) -> None:
    secret = "hunter2-Very-Secret-Value"
    async with DelegateRunner(manager.url, token, tags=("x",)) as d:
        await d.registered()
        task_id = await api.submit({"type": "test.echo", "selectors": ["x"],
                                    "params": {"note": "plain"},
                                    "secrets": {"db_password": secret}})
        done = await api.wait_finished(task_id)
    assert done["status"] == "SUCCESS"
    texts = "\n".join(log_texts(await api.logs(task_id)))
    assert "secret db_password = **************" in texts
    assert secret not in texts
    assert done["output"]["secrets"] == {"db_password": "**************"}
    assert secret not in json.dumps(done)


def test_message_models_round_trip() -> None:
    msg = TaskMessage.model_validate({"task_id": "t", "seq": 1, "payload": {
        "kind": "unit", "unit": "Deploy", "status": "RUNNING",
        "started_at": datetime.now(UTC).isoformat()}})
    assert TaskMessage.model_validate_json(msg.model_dump_json()) == msg


async def test_manager_survives_malformed_frames(manager: ManagerProcess, token: str) -> None:
    """The real manager answers garbage with an error and keeps the session."""
    from websockets.asyncio.client import connect

    from wire import auth
    from wire.protocol import Register

    ws_url = manager.url.replace("http", "ws") + "/api/delegate/ws"
    async with connect(ws_url, max_size=None) as ws:
        await ws.send(dump(Register(
            auth=auth.sign(token, account_id="acme", delegate_name="raw"),
            protocol_versions=[1], account_id="acme", name="raw", tags=[], version="t",
            hostname="h", instance_id="i-raw", capacity=1, task_types=[])))
        assert json.loads(await ws.recv())["type"] == "registered"
        for frame in ["not json", json.dumps({"type": "nope"}),
                      json.dumps({"type": "task_msg", "task_id": "t", "seq": "x"}),
                      "y" * (MAX_MESSAGE_BYTES + 1)]:
            await ws.send(frame)
            reply = json.loads(await asyncio.wait_for(ws.recv(), 10))
            assert reply["type"] == "error", reply
            assert reply["reason"]
        await ws.send(json.dumps({"type": "heartbeat", "running_tasks": [],
                                  "sent_at": datetime.now(UTC).isoformat()}))
        reply = json.loads(await asyncio.wait_for(ws.recv(), 10))
        assert reply["type"] == "heartbeat_ack"


async def test_a_giant_log_line_neither_breaks_the_session_nor_the_task(
        api: ManagerApi, manager: ManagerProcess, token: str) -> None:
    async with DelegateRunner(manager.url, token, tags=("x",)) as d:
        await d.registered()
        task_id = await api.submit({"type": "test.echo", "selectors": ["x"],
                                    "params": {"big": 5 * 1024 * 1024}})
        done = await api.wait_finished(task_id)
        assert d.delegate.session.reconnects == 0
    assert done["status"] == "SUCCESS"
    [line] = [t for t in log_texts(await api.logs(task_id)) if t.startswith("zzz")]
    assert line.endswith("more characters not sent]")
