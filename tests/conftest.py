"""Shared fixtures: the embedded AWS sandbox (tests/sandbox_fixture.py) and a real manager
process with its admin API and a delegate token."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from testkit.stack import ManagerApi, ManagerProcess, running_manager

pytest_plugins = ["testkit.sandbox_fixture"]


@pytest.fixture
def manager_args() -> tuple[str, ...]:
    """Extra `delegate manager serve` arguments; a test package may override this."""
    return ()


@pytest.fixture
async def manager(tmp_path: Path, manager_args: tuple[str, ...]
                  ) -> AsyncIterator[ManagerProcess]:
    async with running_manager(tmp_path, extra_args=manager_args) as m:
        yield m


@pytest.fixture
async def api(manager: ManagerProcess) -> AsyncIterator[ManagerApi]:
    async with manager.api() as client:
        yield ManagerApi(client)


@pytest.fixture
async def token(api: ManagerApi) -> str:
    return await api.create_token("acme")
