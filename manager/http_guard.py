"""uvicorn's HTTP protocol with the two limits it lacks: a deadline for each request's
headers (a new connection's first, and every later one on a kept-alive connection), and a
cap on open HTTP connections per client address. Without them a few hundred idle sockets
from one host hold file descriptors (and slots) forever and can take ``/healthz`` down; a
connection upgraded to the websocket leaves the count (the hub bounds those: register
within ``register_timeout``, then the lease)."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

import structlog
from uvicorn.protocols.http.h11_impl import H11Protocol

log = structlog.get_logger("manager.http")


def guarded_protocol(header_timeout: float, per_client: int) -> type[H11Protocol]:
    """An H11Protocol class whose connections share one per-client count."""
    open_per_client: Counter[str] = Counter()

    class Guarded(H11Protocol):
        _counted: str | None = None
        _deadline: asyncio.TimerHandle | None = None

        def connection_made(self, transport: Any) -> None:
            super().connection_made(transport)
            host = self.client[0] if self.client else "?"
            if open_per_client[host] >= per_client:
                log.warning("connection refused: too many from one client", client=host,
                            limit=per_client)
                transport.abort()
                return
            open_per_client[host] += 1
            self._counted = host
            self._arm_deadline()

        def _arm_deadline(self) -> None:
            # uvicorn's keep-alive timer is cancelled by any byte received, so a client that
            # trickles the next request's headers one byte at a time would hold the connection
            # forever; this deadline is not reset by data, only by a whole request arriving.
            if self._deadline is not None:
                self._deadline.cancel()
            self._deadline = self.loop.call_later(header_timeout, self._no_request, self.cycle)

        def _no_request(self, idle_since: Any) -> None:
            # No new request's headers in time (or a slowloris trickling them): close. A new
            # request replaces ``self.cycle``; the same finished cycle means none arrived.
            if self.cycle is not idle_since or self.transport.is_closing():
                return
            if idle_since is None or idle_since.response_complete:
                self.transport.close()

        def on_response_complete(self) -> None:
            super().on_response_complete()
            if not self.transport.is_closing() and self._counted is not None:
                self._arm_deadline()

        def _release(self) -> None:
            if self._deadline is not None:
                self._deadline.cancel()
            if self._counted is not None:
                open_per_client[self._counted] -= 1
                if open_per_client[self._counted] <= 0:
                    del open_per_client[self._counted]
                self._counted = None

        def handle_websocket_upgrade(self, event: Any) -> None:
            self._release()
            super().handle_websocket_upgrade(event)

        def connection_lost(self, exc: Exception | None) -> None:
            self._release()
            super().connection_lost(exc)

    return Guarded
