"""Wake-ups for long-polling readers (log followers, execution watchers) without polling."""

from __future__ import annotations

import asyncio
import contextlib
from collections import defaultdict


class Signals:
    def __init__(self) -> None:
        self._waiters: defaultdict[str, list[asyncio.Future[None]]] = defaultdict(list)

    def notify(self, key: str) -> None:
        for fut in self._waiters.pop(key, []):
            if not fut.done():
                fut.set_result(None)

    async def wait(self, key: str, timeout: float) -> None:
        """Return when ``key`` is notified or after ``timeout`` seconds. The caller
        must have read its state before calling (no await in between)."""
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters[key].append(fut)
        try:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(fut, timeout)
        finally:
            waiters = self._waiters.get(key)
            if waiters and fut in waiters:
                waiters.remove(fut)
                if not waiters:
                    del self._waiters[key]
