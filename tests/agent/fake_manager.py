"""A scripted manager: a real websocket server on loopback that registers a delegate,
records what it sends and answers each task message as the test's script says."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from websockets.asyncio.server import ServerConnection

from wire.protocol import Ack, Registered, dump

TOKEN = "edt.fake01.0123456789abcdefghijklmnopqrstuvwxyz0123456"

# (the task message received, how many times this seq was seen) -> frames to answer
Script = Callable[[dict[str, Any], int], list[str]]


def ack_all(msg: dict[str, Any], _seen: int) -> list[str]:
    return [dump(Ack(task_id=msg["task_id"], seq=msg["seq"]))]


class ScriptedManager:
    def __init__(self) -> None:
        self.script: Script = ack_all
        self.connections = 0
        self.task_msgs: list[tuple[str, int]] = []
        self.received: list[dict[str, Any]] = []
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
            if msg["type"] != "task_msg":
                continue
            key = (msg["task_id"], msg["seq"])
            self.task_msgs.append(key)
            for frame in self.script(msg, self.task_msgs.count(key)):
                await ws.send(frame)

    def seqs(self, task_id: str) -> list[int]:
        return [seq for t, seq in self.task_msgs if t == task_id]
