"""The log service's bad bodies: 4xx with the reason, and the size limit holds for a
chunked body with no Content-Length (read while streaming, not whole)."""

from __future__ import annotations

import asyncio
from urllib.parse import urlsplit

import pytest

from manager.delegate_http import MAX_LOG_BATCH_BYTES
from tests.manager.conftest import Manager
from wire import auth


async def _jwt(manager: Manager) -> str:
    return auth.sign(await manager.token(), account_id="acct1", delegate_name="d1",
                     audience="logs")


@pytest.mark.parametrize("body", [b"not json", b"[]", b'{"messages": 5}',
                                  b'{"messages": [{"task_id": 1}]}',
                                  b'{"messages": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"])
async def test_invalid_log_batch_is_4xx_with_a_reason(manager: Manager, body: bytes) -> None:
    r = await manager.http.post("/api/delegate/logs", content=body, headers={
        "Authorization": f"Bearer {await _jwt(manager)}", "Content-Type": "application/json"})
    assert r.status_code in (400, 422), r.text
    assert r.json()["detail"], r.text


async def test_chunked_body_over_the_limit_is_refused_while_streaming(
        manager: Manager) -> None:
    url = urlsplit(manager.url)
    reader, writer = await asyncio.open_connection(url.hostname, url.port)
    writer.write((f"POST /api/delegate/logs HTTP/1.1\r\nHost: {url.netloc}\r\n"
                  f"Authorization: Bearer {await _jwt(manager)}\r\n"
                  "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
                  ).encode())
    chunk = b"x" * (1024 * 1024)
    answer = asyncio.ensure_future(reader.readline())
    sent = 0
    try:
        # Never the final chunk: a manager that reads the body whole never answers.
        while not answer.done() and sent < 3 * MAX_LOG_BATCH_BYTES:
            writer.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            await writer.drain()
            sent += len(chunk)
        status = await asyncio.wait_for(answer, 10)
    except (ConnectionError, OSError):
        status = await asyncio.wait_for(answer, 10)
    finally:
        writer.close()
    assert status.startswith(b"HTTP/1.1 413"), status
    assert sent <= MAX_LOG_BATCH_BYTES + 8 * len(chunk)
