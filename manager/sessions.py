"""A connected delegate session: its identity, its credit, and an outbound queue.

Everything the manager sends to a delegate goes through :meth:`Session.send`, which
never blocks: the dispatcher decides synchronously, and one writer coroutine per
session moves the frames (decide first, then do I/O). A frame the delegate could not
take (over ``MAX_MESSAGE_BYTES``) is never sent: it would cost the delegate its
connection. Sends made inside a database transaction go out when it commits
(``defer``), so a delegate never hears of a change that was rolled back."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field

import structlog
from pydantic import BaseModel
from starlette.websockets import WebSocket

from wire.protocol import MAX_MESSAGE_BYTES, dump

log = structlog.get_logger("manager.sessions")
Defer = Callable[[Callable[[], None]], None]


def _now_action(action: Callable[[], None]) -> None:
    action()


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
    # When anything last came from the delegate (any frame): a session silent past
    # the lease is closed.
    last_frame: float = 0.0
    defer: Defer = _now_action
    outbox: asyncio.Queue[str | _Close] = field(default_factory=asyncio.Queue)

    def send(self, msg: BaseModel) -> bool:
        """Queue ``msg``. False (and nothing sent) if it is too large for the delegate."""
        return self.send_text(dump(msg))

    def send_text(self, text: str) -> bool:
        if self.closed:
            return True  # nobody to tell; the frame was not refused
        size = len(text.encode())
        if size > MAX_MESSAGE_BYTES:
            log.error("frame not sent: over the delegate's message limit",
                      delegate=self.name, bytes=size, limit=MAX_MESSAGE_BYTES)
            return False
        self.defer(lambda: self._put(text))
        return True

    def _put(self, item: str | _Close) -> None:
        self.outbox.put_nowait(item)

    def close(self, code: int, reason: str) -> None:
        """Send what is queued, then close the socket. Idempotent."""
        if not self.closed:
            self.closed = True
            self.defer(lambda: self._put(_Close(code, reason)))

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
