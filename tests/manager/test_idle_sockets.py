"""Idle sockets cannot take the manager down: a connection that sends no request is closed
after the header timeout, one client's connections are capped, and /healthz and the
websocket keep serving meanwhile. Real sockets against a real manager."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from urllib.parse import urlsplit

import httpx

from testkit.stack import wait_for
from tests.manager.conftest import FakeDelegate, Manager


async def _idle(manager: Manager, n: int) -> list[tuple[asyncio.StreamReader,
                                                        asyncio.StreamWriter]]:
    url = urlsplit(manager.url)
    return [await asyncio.open_connection(url.hostname, url.port) for _ in range(n)]


async def test_300_idle_sockets_do_not_take_healthz_down(
        make_manager: Callable[..., Manager]) -> None:
    m = make_manager(header_timeout=1.0, max_connections_per_client=400)
    await m.start()
    try:
        socks = await _idle(m, 300)
        started = time.monotonic()
        async with httpx.AsyncClient(base_url=m.url, timeout=5) as fresh:
            assert (await fresh.get("/healthz")).status_code == 200
        assert time.monotonic() - started < 2.0
        d = FakeDelegate(m, await m.token())
        assert (await d.connect()).type == "registered"

        async def all_closed() -> bool | None:
            return all(r.at_eof() for r, _ in socks) or None
        # The manager closes each idle socket at its header deadline.
        for r, _ in socks:
            await asyncio.wait_for(r.read(), 5)
        assert await wait_for(all_closed, timeout=5, what="idle sockets closed")
        await d.close()
        for _, w in socks:
            w.close()
    finally:
        await m.stop()


async def test_connections_per_client_are_capped(
        make_manager: Callable[..., Manager]) -> None:
    m = make_manager(header_timeout=30.0, max_connections_per_client=20)
    await m.start()
    try:
        socks = await _idle(m, 25)
        # The 21st and later are closed at once; the first 20 stay open.
        extra = [await asyncio.wait_for(r.read(), 5) for r, _ in socks[20:]]
        assert extra == [b""] * 5
        assert not any(r.at_eof() for r, _ in socks[:20])
        socks[0][1].close()
        await socks[0][1].wait_closed()

        async def healthz() -> bool | None:
            try:
                async with httpx.AsyncClient(base_url=m.url, timeout=2) as c:
                    return (await c.get("/healthz")).status_code == 200 or None
            except httpx.TransportError:
                return None
        # A slot freed is usable again.
        assert await wait_for(healthz, timeout=5, what="healthz with a freed slot")
        for _, w in socks:
            w.close()
    finally:
        await m.stop()


async def test_a_slowloris_after_a_first_request_is_closed_at_the_header_deadline(
        make_manager: Callable[..., Manager]) -> None:
    # uvicorn's keep-alive timer restarts on every byte; the header deadline must not.
    m = make_manager(header_timeout=1.0, keep_alive_timeout=0.5)
    await m.start()
    url = urlsplit(m.url)
    reader, writer = await asyncio.open_connection(url.hostname, url.port)
    try:
        writer.write(f"GET /healthz HTTP/1.1\r\nHost: {url.netloc}\r\n\r\n".encode())
        await writer.drain()
        assert b"200" in await asyncio.wait_for(reader.readline(), 5)
        started = time.monotonic()
        for byte in f"GET /healthz HTTP/1.1\r\nHost: {url.netloc}\r\nX-Slow: ".encode():
            if reader.at_eof() or writer.is_closing():
                break
            try:
                writer.write(bytes([byte]))
                await writer.drain()
            except ConnectionError:
                break
            # Trickle: one byte every 0.2 s, which keeps resetting uvicorn's keep-alive timer.
            try:
                await asyncio.wait_for(reader.read(65536), 0.2)
            except TimeoutError:
                continue
            if reader.at_eof():
                break
        closed_after = time.monotonic() - started
        assert reader.at_eof(), "the trickling connection was never closed"
        assert closed_after < 4.0, f"closed only after {closed_after:.1f} s"
    finally:
        writer.close()
        await m.stop()
