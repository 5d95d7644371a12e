"""Fixtures of the delegate's unit tests."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from websockets.asyncio.server import serve

from .fake_manager import ScriptedManager


@pytest.fixture
async def fake() -> AsyncIterator[tuple[ScriptedManager, str]]:
    manager = ScriptedManager()
    async with serve(manager.handler, "127.0.0.1", 0, max_size=None) as server:
        port = server.sockets[0].getsockname()[1]
        yield manager, f"http://127.0.0.1:{port}"
