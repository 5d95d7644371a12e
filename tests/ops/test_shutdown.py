"""SIGTERM, as ECS sends it: stop taking work, tell the manager, let running tasks finish
within SHUTDOWN_GRACE, abort the rest with "delegate stopping", flush, exit 0.

The delegate is a real ``python -m cli run`` process; the deployments are real
ecs.rolling_deploy tasks against the sandbox."""

from __future__ import annotations

import asyncio
import signal
import socket
from collections.abc import Callable
from typing import Any

import httpx

from agent.app import FLUSH_TIMEOUT
from testkit.sandbox_fixture import Aws
from testkit.stack import ManagerApi, ManagerProcess, log_texts, wait_for

from .conftest import died, exit_of, health_port
from .deployments import SLOW_IMAGE, rolling_deploy
from .proc import DelegateProcess, delegate_env


async def _start(spawn: Callable[..., DelegateProcess], manager: ManagerProcess, token: str,
                 aws: Aws, grace: str) -> DelegateProcess:
    proc = spawn(delegate_env(manager.url, token, grace=grace, aws=aws.environment()))
    await health_port(proc)
    await wait_for(lambda: proc.first("registered with manager") or died(proc),
                   what="registration")
    return proc


async def _deploying(api: ManagerApi, aws: Aws, task_id: str, service: str) -> None:
    """The task runs at the delegate and its ECS deployment exists: SIGTERM lands mid-way."""
    ecs = aws.client("ecs")

    def service_exists() -> bool:
        found = ecs.describe_services(cluster=aws.cluster, services=[service])["services"]
        return bool(found) and found[0]["status"] == "ACTIVE"

    async def running() -> bool:
        return bool((await api.task(task_id))["status"] == "RUNNING")

    await wait_for(running, what="the task to run")
    await wait_for(service_exists, what="the ECS service to be created")


async def _delegate_state(api: ManagerApi, name: str) -> str | None:
    for d in await api.delegates():
        if d["name"] == name:
            return str(d["state"])
    return None


async def test_sigterm_aborts_a_deployment_that_outlasts_the_grace(
        api: ManagerApi, manager: ManagerProcess, token: str, aws: Aws,
        spawn: Callable[..., DelegateProcess]) -> None:
    grace = 0.3
    proc = await _start(spawn, manager, token, aws, grace=f"{grace}s")
    task_id = await api.submit(rolling_deploy(aws, image=SLOW_IMAGE, name="slow"))
    await _deploying(api, aws, task_id, "slow")

    proc.signal(signal.SIGTERM)
    code, took = await exit_of(proc, timeout=grace + FLUSH_TIMEOUT + 10)

    assert code == 0, proc.text()
    assert took < grace + FLUSH_TIMEOUT, f"took {took:.1f}s"
    task = await api.task(task_id)
    assert task["status"] == "ABORTED", task
    assert task["error"] == "delegate stopping"
    # The logs written before the abort were flushed to the manager, not lost with the
    # process.
    assert log_texts(await api.logs(task_id)), "no task log reached the manager"
    assert proc.first("stopping: no new tasks; waiting for running tasks")
    (aborted,) = proc.events("aborted tasks that did not finish in time")
    assert aborted["tasks"] == [task_id]
    assert not proc.events("manager did not confirm every message before exit")
    assert proc.first("delegate stopped")


async def test_sigterm_lets_a_deployment_that_fits_the_grace_finish(
        api: ManagerApi, manager: ManagerProcess, token: str, aws: Aws,
        spawn: Callable[..., DelegateProcess]) -> None:
    proc = await _start(spawn, manager, token, aws, grace="40s")
    port = await health_port(proc)
    task_id = await api.submit(rolling_deploy(aws, image=SLOW_IMAGE, name="fits"))
    await _deploying(api, aws, task_id, "fits")

    proc.signal(signal.SIGTERM)
    # While it drains, the manager shows it draining and readiness says so.
    await wait_for(lambda: _is_draining(api), what="the manager to show the delegate draining")
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as health:
        ready = await health.get("/readyz")
    assert (ready.status_code, ready.text.strip()) == (503, "draining")
    assert (await api.task(task_id))["status"] == "RUNNING", "drained before the check"

    code, _ = await exit_of(proc, timeout=40)
    assert code == 0, proc.text()
    task = await api.task(task_id)
    assert task["status"] == "SUCCESS", task
    assert not proc.events("aborted tasks that did not finish in time")


async def _is_draining(api: ManagerApi) -> bool:
    return await _delegate_state(api, "ops-1") == "draining"


async def test_a_second_sigterm_cuts_the_grace_short(
        api: ManagerApi, manager: ManagerProcess, token: str, aws: Aws,
        spawn: Callable[..., DelegateProcess]) -> None:
    grace = 90.0
    proc = await _start(spawn, manager, token, aws, grace=f"{grace:g}s")
    task_id = await api.submit(rolling_deploy(aws, image=SLOW_IMAGE, name="hurried"))
    await _deploying(api, aws, task_id, "hurried")

    proc.signal(signal.SIGTERM)
    await wait_for(lambda: proc.first("signal received; draining"), what="the first signal")
    proc.signal(signal.SIGTERM)
    code, took = await exit_of(proc, timeout=FLUSH_TIMEOUT + 10)

    assert code == 0, proc.text()
    assert took < FLUSH_TIMEOUT, f"took {took:.1f}s"
    task: dict[str, Any] = await api.task(task_id)
    assert task["status"] == "ABORTED", task
    assert task["error"] == "delegate stopping"
    assert proc.first("second signal; aborting running tasks now")


async def test_sigterm_while_the_manager_does_not_answer_exits_at_once(
        token: str, spawn: Callable[..., DelegateProcess]) -> None:
    # A listener that accepts the TCP connection and never answers the websocket
    # handshake: the delegate is stuck in a connect attempt (10 s open timeout) when the
    # signal comes, as it would be against a hung manager or a black-holing proxy.
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        silent.settimeout(20)
        url = f"http://127.0.0.1:{silent.getsockname()[1]}"
        proc = spawn(delegate_env(url, token, grace="30s"))
        await health_port(proc)
        held, _ = await asyncio.to_thread(silent.accept)
        with held:
            proc.signal(signal.SIGTERM)
            code, took = await exit_of(proc, timeout=20)
    assert code == 0, proc.text()
    assert took < 3, f"took {took:.1f}s to stop while connecting"
    assert proc.first("delegate stopped")
