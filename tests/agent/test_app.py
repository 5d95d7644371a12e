"""The supervisor: one run() owns the session, health, lag sampling and shutdown; the
CLI stops it through request_shutdown(); health reads a frozen status."""

from __future__ import annotations

import asyncio
import dataclasses
import socket

import httpx
import pytest

from agent.app import Delegate
from agent.config import load_settings
from agent.errors import HealthPortError
from agent.status import DelegateStatus
from testkit.stack import test_registry, wait_for

from .fake_manager import TOKEN, ScriptedManager


def delegate(url: str, **overrides: object) -> Delegate:
    settings = load_settings(account_id="acme", delegate_token=TOKEN, delegate_name="d1",
                             manager_url=url, **overrides)
    return Delegate(settings, test_registry(include_builtin=False), reconnect_min=0.05)


async def test_request_shutdown_drains_tells_the_manager_and_ends_run(
        fake: tuple[ScriptedManager, str]) -> None:
    manager, url = fake
    d = delegate(url, health_port=0, health_host="127.0.0.1")
    run = asyncio.create_task(d.run())
    await wait_for(lambda: d.session.registered.is_set(), what="registration")
    assert d.health is not None
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{d.health.port}") as health:
        assert (await health.get("/readyz")).text == "ready\n"
        d.request_shutdown()
        d.request_shutdown()  # idempotent
        await asyncio.wait_for(run, timeout=10)
        with pytest.raises(httpx.ConnectError):  # the health endpoint closed with it
            await health.get("/healthz")
    assert run.result() is None
    assert [m["type"] for m in manager.received if m["type"] == "draining"] == ["draining"]
    assert not d.session.registered.is_set()


async def test_a_health_port_in_use_fails_start_up_before_connecting(
        fake: tuple[ScriptedManager, str]) -> None:
    manager, url = fake
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        d = delegate(url, health_port=port, health_host="127.0.0.1")
        with pytest.raises(HealthPortError, match=f"HEALTH_PORT: cannot listen on "
                                                  f"127.0.0.1:{port} .*in use"):
            await asyncio.wait_for(d.run(), timeout=10)
    assert manager.connections == 0


async def test_status_is_a_frozen_snapshot(fake: tuple[ScriptedManager, str]) -> None:
    _, url = fake
    d = delegate(url)
    before = d.status()
    assert (before.ready, before.readiness, before.connected) == (
        False, "not connected to the manager", False)
    assert "test.echo" in before.task_types
    with pytest.raises(dataclasses.FrozenInstanceError):
        before.ready = True  # type: ignore[misc]
    run = asyncio.create_task(d.run())
    await wait_for(lambda: d.status().ready, what="ready")
    after = d.status()
    assert isinstance(after, DelegateStatus) and after.connected
    assert before.connected is False  # the earlier snapshot did not move
    await d.session.stop()
    await asyncio.wait_for(run, timeout=10)
