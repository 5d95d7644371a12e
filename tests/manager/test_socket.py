"""The manager's listening socket makes asyncio turn Nagle off on every connection it
accepts (without it, some HTTP answers waited ~40 ms for a delayed ACK)."""

from __future__ import annotations

import asyncio
import socket

from manager.app import _bind


async def test_accepted_connections_have_tcp_nodelay() -> None:
    sock = _bind("127.0.0.1", 0)
    port = sock.getsockname()[1]
    seen: asyncio.Future[int] = asyncio.get_running_loop().create_future()

    def accepted(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        conn = writer.get_extra_info("socket")
        seen.set_result(conn.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
        writer.close()

    server = await asyncio.start_server(accepted, sock=sock)
    try:
        _, writer = await asyncio.open_connection("127.0.0.1", port)
        assert await asyncio.wait_for(seen, 5) != 0
        writer.close()
    finally:
        server.close()
        await server.wait_closed()
