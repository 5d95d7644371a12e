"""A real manager on a loopback port with a temp SQLite file, an admin HTTP client, and
a fake delegate that speaks the protocol over a real websocket."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets
from pydantic import BaseModel

from manager.app import ManagerServer
from manager.settings import Settings
from testkit.stack import test_database, wait_for
from wire import auth
from wire.protocol import (
    MAX_MESSAGE_BYTES,
    PROTOCOL_VERSION,
    Register,
    TaskMessage,
    TaskPayload,
    dump,
    manager_message_adapter,
)

ADMIN = "test-admin-token-0123456789"
SECRET_KEY = "test-secret-key-for-manager-tests"


class Manager:
    def __init__(self, db: Path, **overrides: Any) -> None:
        self.db = db
        target = test_database(db.parent)
        # On the PostgreSQL pass (TEST_MANAGER_DB=postgresql) the data is there instead.
        self.db_url = target if target.startswith("postgresql://") else None
        self.overrides = overrides
        self.server: ManagerServer | None = None
        self.client: httpx.AsyncClient | None = None

    async def start(self) -> None:
        settings = Settings(db_path=self.db, db_url=self.db_url, admin_token=ADMIN,
                            secret_key=SECRET_KEY,
                            **{"watchdog_interval": 0.05, **self.overrides})
        self.server = ManagerServer(settings)
        await self.server.start()
        self.client = httpx.AsyncClient(base_url=self.url,
                                        headers={"Authorization": f"Bearer {ADMIN}"})

    async def stop(self) -> None:
        if self.client is not None:
            await self.client.aclose()
        if self.server is not None:
            await self.server.stop()

    @property
    def url(self) -> str:
        assert self.server is not None
        return self.server.url

    @property
    def ws_url(self) -> str:
        return self.url.replace("http", "ws", 1) + "/api/delegate/ws"

    @property
    def http(self) -> httpx.AsyncClient:
        assert self.client is not None
        return self.client

    async def token(self, account: str = "acct1") -> str:
        r = await self.http.post("/api/tokens", json={"account_id": account})
        assert r.status_code == 201, r.text
        return str(r.json()["token"])

    async def submit(self, **body: Any) -> str:
        body.setdefault("type", "test.echo")
        r = await self.http.post("/api/tasks", json=body)
        assert r.status_code == 201, r.text
        return str(r.json()["task_id"])

    async def task(self, task_id: str) -> dict[str, Any]:
        r = await self.http.get(f"/api/tasks/{task_id}")
        assert r.status_code == 200, r.text
        return dict(r.json())

    async def wait_status(self, task_id: str, *statuses: str, timeout: float = 10.0) -> dict[
            str, Any]:
        async def check() -> dict[str, Any] | None:
            t = await self.task(task_id)
            return t if t["status"] in statuses else None
        result: dict[str, Any] = await wait_for(check, timeout=timeout,
                                                what=f"{task_id} in {statuses}")
        return result

    async def logs(self, task_id: str, after: int = 0) -> list[dict[str, Any]]:
        r = await self.http.get(f"/api/tasks/{task_id}/logs", params={"after": after})
        assert r.status_code == 200, r.text
        return [json.loads(line) for line in r.text.splitlines() if line]


class FakeDelegate:
    """Speaks the protocol with wire.protocol models; every received message is kept."""

    def __init__(self, manager: Manager, token: str, *, account: str = "acct1",
                 name: str = "d1", tags: tuple[str, ...] = ("a",),
                 task_types: tuple[str, ...] = ("test.echo",), capacity: int = 2,
                 instance_id: str | None = None) -> None:
        self.manager = manager
        self.token = token
        self.account = account
        self.name = name
        self.tags = list(tags)
        self.task_types = list(task_types)
        self.capacity = capacity
        self.instance_id = instance_id or uuid.uuid4().hex
        self.ws: Any = None
        self.inbox: asyncio.Queue[Any] = asyncio.Queue()
        self.received: list[Any] = []
        self._reader: asyncio.Task[None] | None = None
        self.close_code: int | None = None

    async def connect(self, *, running: list[str] | None = None, auth_jwt: str | None = None,
                      account: str | None = None) -> Any:
        self.ws = await websockets.connect(self.manager.ws_url, max_size=4 * MAX_MESSAGE_BYTES)
        jwt = auth_jwt or auth.sign(self.token, account_id=account or self.account,
                                    delegate_name=self.name)
        await self.send(Register(
            auth=jwt, protocol_versions=[PROTOCOL_VERSION], account_id=account or self.account,
            name=self.name, tags=self.tags, version="test", hostname="localhost",
            instance_id=self.instance_id, capacity=self.capacity, task_types=self.task_types,
            running_tasks=running or []))
        self._reader = asyncio.create_task(self._read())
        return await self.next()

    async def _read(self) -> None:
        try:
            async for raw in self.ws:
                msg = manager_message_adapter.validate_json(raw)
                self.received.append(msg)
                await self.inbox.put(msg)
        except websockets.ConnectionClosed:
            pass
        finally:
            self.close_code = self.ws.close_code
            await self.inbox.put(None)

    async def send(self, msg: BaseModel | str) -> None:
        await self.ws.send(msg if isinstance(msg, str) else dump(msg))

    async def next(self, kind: str | None = None, timeout: float = 5.0) -> Any:
        while True:
            msg = await asyncio.wait_for(self.inbox.get(), timeout)
            if msg is None:
                raise ConnectionError(f"closed with code {self.close_code}")
            if kind is None or msg.type == kind:
                return msg

    async def msg(self, task_id: str, seq: int, payload: TaskPayload) -> None:
        await self.send(TaskMessage(task_id=task_id, seq=seq, payload=payload))

    async def close(self) -> None:
        if self.ws is not None:
            await self.ws.close()
        if self._reader is not None:
            await self._reader


@pytest.fixture
async def manager(tmp_path: Path) -> AsyncIterator[Manager]:
    m = Manager(tmp_path / "manager.db")
    await m.start()
    yield m
    await m.stop()


@pytest.fixture
def make_manager(tmp_path: Path) -> Callable[..., Manager]:
    def make(**overrides: Any) -> Manager:
        return Manager(tmp_path / "manager.db", **overrides)
    return make
