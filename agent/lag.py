"""Event-loop lag: how late the loop runs a timer. A loop blocked by a handler (a
synchronous call in a task) shows here before it shows as missed heartbeats."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

INTERVAL = 0.5


async def sample_lag(record: Callable[[float], None], interval: float = INTERVAL) -> None:
    """Forever: sleep ``interval`` and record how much longer than that it took."""
    while True:
        before = time.monotonic()
        await asyncio.sleep(interval)
        record(max(0.0, time.monotonic() - before - interval))
