"""Fixtures: the shared manager (tests/conftest.py) with a short heartbeat interval, and
delegate processes that are always killed at the end of a test."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from .proc import DelegateProcess

# Short, so "a heartbeat answered within two intervals" is observable in a test.
HEARTBEAT = 0.5
MANAGER_ARGS = ("--heartbeat-interval", f"{HEARTBEAT}s")


@pytest.fixture
def manager_args() -> tuple[str, ...]:
    return MANAGER_ARGS


@pytest.fixture
def spawn(tmp_path: Path) -> Iterator[Callable[..., DelegateProcess]]:
    """Start ``delegate run`` processes; whatever is still running at the end is killed."""
    started: list[DelegateProcess] = []

    def start(env: dict[str, str], **kw: Any) -> DelegateProcess:
        proc = DelegateProcess(env, tmp_path / f"delegate-{len(started)}.log", **kw)
        started.append(proc)
        return proc.start()

    yield start
    for proc in started:
        proc.kill()


async def health_port(proc: DelegateProcess, timeout: float = 20.0) -> int:
    from testkit.stack import wait_for

    port: int = await wait_for(lambda: proc.health_port() or died(proc), timeout=timeout,
                               what="the 'health endpoint listening' line")
    return port


def died(proc: DelegateProcess) -> bool:
    """False while the process runs; fails the test with its log once it has exited, so a
    wait on its log ends at once instead of at the deadline."""
    if proc.returncode is not None:
        raise AssertionError(f"delegate exited with {proc.returncode}:\n{proc.text()}")
    return False


async def exit_of(proc: DelegateProcess, timeout: float) -> tuple[int, float]:
    return await asyncio.to_thread(proc.wait_exit, timeout)
