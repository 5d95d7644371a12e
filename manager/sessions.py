"""A connected delegate session: its identity, its credit, and an outbound queue.

Everything the manager sends to a delegate goes through :meth:`Session.send`, which
never blocks: the dispatcher decides synchronously, and one writer coroutine per
session moves the frames (decide first, then do I/O)."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field

from pydantic import BaseModel
from starlette.websockets import WebSocket

from wire.protocol import dump


@dataclass(frozen=True)
class _Close:
    code: int
    reason: str


@dataclass(eq=False)
class Session:
    session_id: str
    delegate_id: str
    account_id: str
    name: str
    instance_id: str
    token_id: str
    tags: frozenset[str]
    task_types: frozenset[str]
    capacity: int
    ws: WebSocket | None
    draining: bool = False
    credit: int = 0
    closed: bool = False
    outbox: asyncio.Queue[str | _Close] = field(default_factory=asyncio.Queue)

    def send(self, msg: BaseModel) -> None:
        if not self.closed:
            self.outbox.put_nowait(dump(msg))

    def close(self, code: int, reason: str) -> None:
        """Send what is queued, then close the socket. Idempotent."""
        if not self.closed:
            self.closed = True
            self.outbox.put_nowait(_Close(code, reason))

    def label(self) -> str:
        return f"{self.name} [{', '.join(sorted(self.tags))}]"

    async def run_writer(self) -> None:
        if self.ws is None:
            return
        while True:
            item = await self.outbox.get()
            if isinstance(item, _Close):
                with contextlib.suppress(Exception):
                    await self.ws.close(code=item.code, reason=item.reason[:120])
                return
            try:
                await self.ws.send_text(item)
            except Exception:
                # The peer went away; the reader notices the disconnect and detaches us.
                self.closed = True
                return
