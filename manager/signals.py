"""Wake-ups for long-polling readers (log followers, execution watchers) without polling.

A follower may be on another replica than the one that stored what it waits for: each
notification also goes over the bus (``signal``), and a replica notifies its own waiters
when another one tells it to."""

from __future__ import annotations

import asyncio
import contextlib
from collections import defaultdict

from manager.bus import Bus


class Signals:
    def __init__(self, bus: Bus | None = None) -> None:
        self._waiters: defaultdict[str, list[asyncio.Future[None]]] = defaultdict(list)
        self._bus = bus
        if bus is not None:
            bus.on("signal", self._wake)

    def notify(self, key: str) -> None:
        """Wake ``key``'s waiters on every replica once the open transaction commits (at
        once outside one)."""
        if self._bus is None:
            self._wake(key)
        else:
            self._bus.publish("signal", key)

    def _wake(self, key: str) -> None:
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
