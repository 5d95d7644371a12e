"""Deeply nested JSON never reaches a recursive parser: websocket frames before and after
registration get an error answer, HTTP bodies a 4xx, never a traceback or a 500."""

from __future__ import annotations

import json

import pytest
import websockets

from tests.manager.conftest import FakeDelegate, Manager
from wire.jsonlimits import MAX_DEPTH, TooDeep, loads
from wire.protocol import Pull


def _nested(depth: int) -> str:
    return '{"type": "heartbeat", "x": ' + "[" * depth + "]" * depth + "}"


def test_loads_refuses_deep_nesting_and_reads_brackets_in_strings() -> None:
    with pytest.raises(TooDeep, match=f"recursion limit of {MAX_DEPTH} levels"):
        loads("[" * 100_000 + "]" * 100_000)
    assert loads('{"a": "[[[[\\"{{{{", "b": [[1]]}') == {"a": '[[[["{{{{', "b": [[1]]}
    assert loads("[" * MAX_DEPTH + "]" * MAX_DEPTH) is not None


@pytest.mark.parametrize("depth", [1000, 100_000])
async def test_deep_register_frame_is_refused_with_a_reason(manager: Manager,
                                                            depth: int) -> None:
    async with websockets.connect(manager.ws_url, max_size=None) as ws:
        await ws.send(_nested(depth))
        answer = json.loads(await ws.recv())
        assert answer["type"] in ("error", "refused"), answer
        assert "nest" in json.dumps(answer), answer
        with pytest.raises(websockets.ConnectionClosed):
            await ws.recv()
        assert ws.close_code != 1006


async def test_deep_frame_after_register_gets_an_error_frame(manager: Manager) -> None:
    d = FakeDelegate(manager, await manager.token())
    await d.connect()
    await d.send(_nested(100_000))
    err = await d.next("error")
    assert "nest" in err.reason
    task_id = await manager.submit(selectors=["a"])
    await d.send(Pull(free_slots=1))
    assert (await d.next("assign")).task.task_id == task_id  # the session lives on
    await d.close()


@pytest.mark.parametrize("path", ["/api/tasks", "/api/executions"])
async def test_deep_http_body_is_4xx(manager: Manager, path: str) -> None:
    body = '{"type": "test.echo", "params": {"a": ' + "[" * 100_000 + "]" * 100_000 + "}}"
    r = await manager.http.post(path, content=body,
                                headers={"Content-Type": "application/json"})
    assert r.status_code == 400, r.text
    assert "nests too deeply" in r.json()["detail"]
