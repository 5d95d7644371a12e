"""testkit/loadbalancer.py: a real HAProxy in front of real manager processes. Both
replicas answer, a replica killed with SIGKILL costs no request, and a real delegate's
websocket passes through it (and comes back through it after its replica died)."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import signal
import socket
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from testkit.loadbalancer import (
    REPLICA_HEADER,
    Backend,
    LoadBalancer,
    LoadBalancerError,
    haproxy_binary,
    render_config,
)
from testkit.stack import (
    ADMIN_TOKEN,
    DelegateRunner,
    ManagerApi,
    ManagerProcess,
    log_texts,
    running_manager,
    wait_for,
)


@contextlib.asynccontextmanager
async def two_managers(tmp_path: Path) -> AsyncIterator[list[ManagerProcess]]:
    """Two managers, each on its own SQLite file: the balancer needs no shared database."""
    async with contextlib.AsyncExitStack() as stack:
        managers = []
        for name in ("a", "b"):
            folder = tmp_path / name
            folder.mkdir()
            managers.append(await stack.enter_async_context(
                running_manager(folder, db=str(folder / "manager.db"))))
        yield managers


def balancer(managers: list[ManagerProcess], tmp_path: Path) -> LoadBalancer:
    return LoadBalancer([f"m{i}=127.0.0.1:{m.port}" for i, m in enumerate(managers, 1)],
                        workdir=tmp_path / "haproxy")


def client(lb: LoadBalancer) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=lb.url, timeout=10,
                             headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})


async def test_both_replicas_answer_through_the_balancer(tmp_path: Path) -> None:
    async with two_managers(tmp_path) as managers:
        with balancer(managers, tmp_path) as lb:
            assert lb.states() == {"m1": "UP", "m2": "UP"}
            async with client(lb) as c:
                answers = [await c.get("/api/delegates") for _ in range(6)]
    assert [r.status_code for r in answers] == [200] * 6
    # round robin: the two replicas take turns (whichever HAProxy starts with)
    names = [r.headers[REPLICA_HEADER] for r in answers]
    assert set(names) == {"m1", "m2"} and all(
        a != b for a, b in itertools.pairwise(names)), names


async def test_a_killed_replica_costs_no_request(tmp_path: Path) -> None:
    async with two_managers(tmp_path) as managers:
        with balancer(managers, tmp_path) as lb:
            async with client(lb) as c:
                await asyncio.to_thread(managers[0].kill)  # SIGKILL: no clean shutdown
                killed = time.monotonic()
                # Before the health checks notice, requests aimed at the dead replica are
                # refused by it and redispatched; after, it is out of the pool.
                answers = [await c.get("/api/delegates") for _ in range(40)]
                answered_in = time.monotonic() - killed
                await asyncio.to_thread(lb.wait_states, {"m1": "DOWN", "m2": "UP"},
                                        timeout=5)
                out_of_pool = time.monotonic() - killed
                answers += [await c.get("/api/delegates") for _ in range(10)]
    assert [(r.status_code, r.headers[REPLICA_HEADER]) for r in answers] == [(200, "m2")] * 50
    assert answered_in < 5.0, f"40 requests took {answered_in:.2f}s after the kill"
    assert out_of_pool < 2.0, f"the killed replica left the pool after {out_of_pool:.2f}s"


async def test_a_delegate_websocket_passes_through_and_comes_back_after_its_replica_died(
        tmp_path: Path) -> None:
    args = ("--heartbeat-interval", "0.5s")
    async with running_manager(tmp_path, extra_args=args) as manager:
        with balancer([manager], tmp_path) as lb:
            async with client(lb) as c:
                api = ManagerApi(c)
                token = await api.create_token("acme")
                async with DelegateRunner(lb.url, token, tags=("lb",)) as d:
                    await d.registered()
                    assert lb.sessions() == {"m1": 1}, lb.sessions()
                    ws = d.delegate.session._ws  # its local port is what HAProxy routes
                    assert ws is not None
                    assert lb.routes() == {ws.local_address[1]: "m1"}
                    task_id = await api.submit({"type": "test.echo", "selectors": ["lb"],
                                                "params": {"n": 1}})
                    first = await api.wait_finished(task_id)
                    lines = log_texts(await api.logs(task_id))

                    # The replica dies; it comes back on the same port and database, and
                    # the delegate reconnects through the balancer.
                    await asyncio.to_thread(manager.kill)
                    await wait_for(lambda: not d.delegate.session.registered.is_set(),
                                   what="the delegate to see its websocket closed")
                    await asyncio.to_thread(manager.start)
                    await d.registered()
                    again = await api.submit({"type": "test.echo", "selectors": ["lb"]})
                    second = await api.wait_finished(again)
    assert first["status"] == "SUCCESS" and second["status"] == "SUCCESS", (first, second)
    assert lines == ["params {'n': 1}"]


def test_the_configuration_is_what_haproxy_accepts(tmp_path: Path) -> None:
    text = render_config([Backend("m1", "127.0.0.1", 1), Backend("m2", "127.0.0.1", 2)],
                         port=3, admin_socket=tmp_path / "s")
    for line in ("timeout tunnel 1h", "option redispatch 1", "retries 3",
                 "http-check send meth GET uri /healthz",
                 "server m1 127.0.0.1:1 check inter 250ms fall 2 rise 1",
                 f"http-response set-header {REPLICA_HEADER} %s"):
        assert line in text
    lb = LoadBalancer(["127.0.0.1:1"], workdir=tmp_path)
    lb.config_path.write_text(text)
    lb._check(haproxy_binary())


@pytest.mark.parametrize("bad", ["localhost", "127.0.0.1:", ":80", "m1=host:port"])
def test_a_malformed_backend_is_refused_with_what_to_write(bad: str) -> None:
    with pytest.raises(LoadBalancerError, match=r"expected host:port or name=host:port"):
        LoadBalancer([bad])


async def test_stop_ends_haproxy_and_is_idempotent(tmp_path: Path) -> None:
    async with running_manager(tmp_path) as manager:
        lb = balancer([manager], tmp_path).start()
        assert lb.proc is not None
        proc = lb.proc
        lb.stop()
        lb.stop()
    assert proc.returncode in (0, -signal.SIGTERM, 128 + signal.SIGTERM)
    async with httpx.AsyncClient(timeout=2) as c:
        with pytest.raises(httpx.ConnectError):
            await c.get(lb.url + "/healthz")


def test_a_start_whose_backends_never_come_up_fails_and_leaves_nothing_running(
        tmp_path: Path) -> None:
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        dead = s.getsockname()[1]
    lb = LoadBalancer([f"127.0.0.1:{dead}"], workdir=tmp_path)
    with pytest.raises(LoadBalancerError, match=r"haproxy sees .*, not \{'m1': 'UP'\}"):
        lb.start(timeout=2)
    assert lb.proc is None
