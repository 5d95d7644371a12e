from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.harness import ManagerApi, ManagerProcess, running_manager


@pytest.fixture
async def manager(tmp_path: Path) -> AsyncIterator[ManagerProcess]:
    async with running_manager(tmp_path) as m:
        yield m


@pytest.fixture
async def api(manager: ManagerProcess) -> AsyncIterator[ManagerApi]:
    async with manager.api() as client:
        yield ManagerApi(client)


@pytest.fixture
async def token(api: ManagerApi) -> str:
    return await api.create_token("acme")
