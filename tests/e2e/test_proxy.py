"""The standard proxy variables: with HTTPS_PROXY set, the delegate reaches its manager
through the proxy (an HTTP CONNECT proxy in this test); NO_PROXY bypasses it."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import pytest

from testkit.stack import DelegateRunner, ManagerApi, ManagerProcess


class ConnectProxy:
    """A minimal HTTP CONNECT proxy on loopback that records where clients tunnel to."""

    def __init__(self) -> None:
        self.tunnels: list[str] = []
        self.port = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            method, target, _ = head.split(b"\r\n", 1)[0].decode().split(" ", 2)
            if method != "CONNECT":
                writer.write(b"HTTP/1.1 405 Method Not Allowed\r\n\r\n")
                return
            host, port = target.rsplit(":", 1)
            up_reader, up_writer = await asyncio.open_connection(host, int(port))
            self.tunnels.append(target)
            writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
            await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
    try:
        while data := await src.read(65536):
            dst.write(data)
            await dst.drain()
    except ConnectionError:
        pass
    finally:
        with contextlib.suppress(Exception):
            dst.close()


@pytest.fixture
async def proxy() -> AsyncIterator[ConnectProxy]:
    p = ConnectProxy()
    server = await asyncio.start_server(p.handle, "127.0.0.1", 0)
    p.port = server.sockets[0].getsockname()[1]
    async with server:
        yield p
        server.close()


async def test_the_manager_connection_goes_through_https_proxy(
        api: ManagerApi, manager: ManagerProcess, token: str, proxy: ConnectProxy,
        monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("NO_PROXY", "no_proxy", "HTTP_PROXY", "http_proxy", "https_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTPS_PROXY", f"http://127.0.0.1:{proxy.port}")
    async with DelegateRunner(manager.url, token, tags=("px",)) as d:
        await d.registered()
        task_id = await api.submit({"type": "test.echo", "selectors": ["px"]})
        assert (await api.wait_finished(task_id))["status"] == "SUCCESS"
    assert proxy.tunnels == [manager.url.removeprefix("http://")]


async def test_no_proxy_bypasses_it(api: ManagerApi, manager: ManagerProcess, token: str,
                                    proxy: ConnectProxy,
                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", f"http://127.0.0.1:{proxy.port}")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    async with DelegateRunner(manager.url, token, tags=("px",)) as d:
        await d.registered()
    assert proxy.tunnels == []
