"""Shared fixtures: the embedded AWS sandbox (testkit/sandbox_fixture.py), a real manager
process with its admin API and a delegate token, and a real delegate on the sandbox."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING

import pytest

from testkit.spare_managers import SpareManagers
from testkit.stack import DelegateRunner, ManagerApi, ManagerProcess

if TYPE_CHECKING:  # imported at run time by pytest_plugins below, which must come first
    from testkit.sandbox_fixture import Aws

pytest_plugins = ["testkit.sandbox_fixture"]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """On the PostgreSQL pass, a test of the SQLite file itself has nothing to test."""
    if os.environ.get("TEST_MANAGER_DB") != "postgresql":
        return
    skip = pytest.mark.skip(reason="checks the SQLite file itself (this is the PostgreSQL "
                                   "pass; the SQLite pass runs it)")
    for item in items:
        if item.get_closest_marker("sqlite_only"):
            item.add_marker(skip)


@pytest.fixture
def manager_args() -> tuple[str, ...]:
    """Extra `delegate manager serve` arguments; a test package may override this."""
    return ()


@pytest.fixture(scope="session")
def manager_stops() -> Iterator[Callable[[ManagerProcess], None]]:
    """Stops finished tests' managers in the background. A stop is a clean shutdown that
    takes 0.2 s, and 5 s (uvicorn's graceful limit) when a console page left a long poll
    open; no test checks it, so the next test need not wait for it. Every stop is
    finished, and any error in one raised, before the run ends."""
    pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="manager-stop")
    stopping: list[Future[None]] = []
    yield lambda m: stopping.append(pool.submit(m.stop))
    pool.shutdown(wait=True)
    for stop in stopping:
        stop.result()


@pytest.fixture(scope="session")
def spare_managers(tmp_path_factory: pytest.TempPathFactory,
                   manager_stops: Callable[[ManagerProcess], None]
                   ) -> Iterator[SpareManagers]:
    """The next test's manager, started while this one runs (testkit/spare_managers.py)."""
    spares = SpareManagers(lambda: tmp_path_factory.mktemp("manager"), manager_stops)
    yield spares
    spares.close()


@pytest.fixture
async def manager(manager_args: tuple[str, ...], spare_managers: SpareManagers,
                  manager_stops: Callable[[ManagerProcess], None]
                  ) -> AsyncIterator[ManagerProcess]:
    """A fresh manager process of the test's own, with its own database (in a folder of
    its own, not the test's tmp_path)."""
    m = await asyncio.to_thread(spare_managers.take, manager_args)
    try:
        yield m
    finally:
        manager_stops(m)


@pytest.fixture
async def api(manager: ManagerProcess) -> AsyncIterator[ManagerApi]:
    async with manager.api() as client:
        yield ManagerApi(client)


@pytest.fixture
async def token(api: ManagerApi) -> str:
    return await api.create_token("acme")


@pytest.fixture
async def aws_delegate(aws: Aws, monkeypatch: pytest.MonkeyPatch, manager: ManagerProcess,
                       token: str) -> AsyncIterator[DelegateRunner]:
    """A real delegate tagged ``ecs``, registered with the manager, whose AWS is the
    sandbox (its endpoint and credentials in the environment)."""
    for key, value in aws.environment().items():
        monkeypatch.setenv(key, value)
    async with DelegateRunner(manager.url, token, tags=("ecs",)) as d:
        await d.registered()
        yield d
