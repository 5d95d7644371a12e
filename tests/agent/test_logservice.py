"""The HTTP log-service sender against a real HTTP server on loopback that answers
garbage first: a bad answer is retried, never the end of the process."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator

import pytest

from agent.config import load_settings
from agent.logservice import LogServiceSender
from agent.outbox import Outbox
from testkit.stack import wait_for
from wire.protocol import ResultPayload, TaskStatus

from .fake_manager import TOKEN

DEEP = "[" * 100_000 + "]" * 100_000


class LogService:
    """Answers the first POST with ``first``, then acks everything it got."""

    def __init__(self, first: str) -> None:
        self.answers = [first]
        self.posts = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        length = next(int(h.split(b":")[1]) for h in head.split(b"\r\n")
                      if h.lower().startswith(b"content-length:"))
        body = json.loads(await reader.readexactly(length))
        self.posts += 1
        answer = self.answers.pop(0) if self.answers else json.dumps(
            {"acks": {m["task_id"]: m["seq"] for m in body["messages"]}})
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
                     b"content-length: %d\r\nconnection: close\r\n\r\n%s"
                     % (len(answer), answer.encode()))
        await writer.drain()
        writer.close()


@pytest.fixture
async def service() -> AsyncIterator[tuple[LogService, str]]:
    svc = LogService(first=DEEP)
    server = await asyncio.start_server(svc.handle, "127.0.0.1", 0)
    async with server:
        yield svc, f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"


async def test_a_deeply_nested_answer_is_retried_not_a_crash(
        service: tuple[LogService, str]) -> None:
    svc, url = service
    settings = load_settings(account_id="acme", delegate_token=TOKEN,
                             manager_url="https://m.example.com",
                             log_streaming_service_url=url)
    outbox = Outbox()
    outbox.add("t-1", ResultPayload(status=TaskStatus.SUCCESS))
    sender = LogServiceSender(settings, outbox)
    run = asyncio.create_task(sender.run())
    try:
        await wait_for(lambda: outbox.buffered == 0 or run.done(), what="the ack")
        assert not run.done(), run.exception()
        assert svc.posts == 2 and sender.failures == 1
    finally:
        run.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await run
        await sender.aclose()
