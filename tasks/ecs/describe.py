"""One DescribeServices call for up to ten services: concurrent watchers share polls.

Watchers on the same (credentials identity, endpoint, region, cluster) share one
:class:`DescribeCoalescer`. A watcher asks for its service "``delay`` seconds from
now"; when the earliest request falls due, every request due within half its own poll
interval is served by the same round, so watchers with the same interval fall into
step after their first poll and one round costs ``ceil(services / 10)`` calls. The
coalescer borrows the AWS client of any current subscriber (they share credentials),
so it owns no client and stops with its last subscriber.

Throttling never fails a watch: botocore's adaptive retries come first, then tenacity
backs off (jittered, exponential) for as long as the caller's timeout allows.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass, field
from typing import Any

from tenacity import AsyncRetrying, retry_if_exception

from tasks.aws.credentials import AccessKeyCredentials, Credentials
from tasks.aws.ports import EcsClient
from tasks.ecs.errors import BACKOFF, is_throttling

MAX_SERVICES_PER_CALL = 10  # DescribeServices' own limit
# Services per call for new coalescers; the bench sets 1 to measure the uncoalesced cost.
batch_size = MAX_SERVICES_PER_CALL


@dataclass
class DescribeStats:
    """Process-wide counters, read by the bench and by tests."""

    calls: int = 0
    rounds: int = 0
    throttled: int = 0
    largest_round: int = 0  # calls made by the busiest round
    services_in_largest_round: int = 0

    def reset(self) -> None:
        self.calls = self.rounds = self.throttled = 0
        self.largest_round = self.services_in_largest_round = 0


STATS = DescribeStats()


@dataclass
class _Request:
    service: str
    due: float
    slack: float
    future: asyncio.Future[dict[str, Any] | None] = field(repr=False)


class DescribeCoalescer:
    def __init__(self, key: tuple[str, ...], cluster: str, batch: int) -> None:
        self.key = key
        self.cluster = cluster
        self.batch = max(1, min(batch, MAX_SERVICES_PER_CALL))
        self.loop = asyncio.get_running_loop()
        self.calls = 0
        self.rounds = 0
        self._clients: dict[int, EcsClient] = {}
        self._tokens = itertools.count()
        self._pending: list[_Request] = []
        self._wake = asyncio.Event()
        self._runner: asyncio.Task[None] | None = None

    # -- subscribers

    def attach(self, client: EcsClient) -> int:
        token = next(self._tokens)
        self._clients[token] = client
        if self._runner is None or self._runner.done():
            self._runner = self.loop.create_task(self._run(), name=f"describe {self.key}")
        return token

    def detach(self, token: int) -> bool:
        """Forget a subscriber; True when it was the last (the caller drops us)."""
        self._clients.pop(token, None)
        return not self._clients

    async def close(self) -> None:
        if self._runner is not None:
            self._runner.cancel()
            with suppress(asyncio.CancelledError):
                await self._runner
        for request in self._pending:
            if not request.future.done():
                request.future.cancel()
        self._pending.clear()

    # -- requests

    async def describe(self, service: str, *, delay: float) -> dict[str, Any] | None:
        future: asyncio.Future[dict[str, Any] | None] = self.loop.create_future()
        self._pending.append(_Request(service, self.loop.time() + delay, delay / 2, future))
        self._wake.set()
        try:
            return await future
        finally:
            if not future.done():
                future.cancel()

    async def _run(self) -> None:
        while True:
            self._pending = [r for r in self._pending if not r.future.done()]
            if not self._pending:
                self._wake.clear()
                await self._wake.wait()
                continue
            earliest = min(r.due for r in self._pending)
            wait = earliest - self.loop.time()
            if wait > 0:
                self._wake.clear()
                # A new request may fall due sooner than the current earliest.
                with suppress(TimeoutError):
                    async with asyncio.timeout(wait):
                        await self._wake.wait()
                continue
            now = self.loop.time()
            due = [r for r in self._pending if r.due - r.slack <= now]
            self._pending = [r for r in self._pending if r.due - r.slack > now]
            await self._round(due)

    async def _round(self, requests: list[_Request]) -> None:
        self.rounds += 1
        STATS.rounds += 1
        names = list(dict.fromkeys(r.service for r in requests))
        batches = [names[i:i + self.batch] for i in range(0, len(names), self.batch)]
        calls_before = self.calls
        answers = await asyncio.gather(*(self._call(b) for b in batches),
                                       return_exceptions=True)
        made = self.calls - calls_before
        if made > STATS.largest_round:
            STATS.largest_round, STATS.services_in_largest_round = made, len(names)
        for batch, answer in zip(batches, answers, strict=True):
            for request in requests:
                if request.service not in batch or request.future.done():
                    continue
                if isinstance(answer, BaseException):
                    request.future.set_exception(answer)
                else:
                    request.future.set_result(answer.get(request.service))

    async def _call(self, names: list[str]) -> dict[str, dict[str, Any] | None]:
        used: list[EcsClient] = []

        def retryable(exc: BaseException) -> bool:
            if is_throttling(exc):
                STATS.throttled += 1
                return True
            # The borrowed client's task ended mid-call: try again with another one.
            return bool(used) and used[-1] not in self._clients.values() and bool(
                self._clients)

        async for attempt in AsyncRetrying(
            retry=retry_if_exception(retryable),
            wait=BACKOFF,
            reraise=True,
        ):
            with attempt:
                if not self._clients:
                    raise RuntimeError("no AWS client left to describe services with")
                client = next(iter(self._clients.values()))
                used.append(client)
                self.calls += 1
                STATS.calls += 1
                answer = await client.describe_services(cluster=self.cluster,
                                                        services=names)
        found: dict[str, dict[str, Any] | None] = dict.fromkeys(names)
        for service in answer.get("services", []):
            for key in (service.get("serviceName"), service.get("serviceArn")):
                if key in found:
                    found[key] = service
        return found


_REGISTRY: dict[tuple[str, ...], DescribeCoalescer] = {}


def identity_of(credentials: Credentials | None) -> str:
    is_key = isinstance(credentials, AccessKeyCredentials)
    base = credentials.access_key_id if is_key else "inherit"  # type: ignore[union-attr]
    return f"{base}|{credentials.role_arn or ''}" if credentials is not None else base


@dataclass
class SharedDescriber:
    """A subscriber's handle on a shared coalescer."""

    coalescer: DescribeCoalescer

    async def describe(self, service: str, *, delay: float) -> dict[str, Any] | None:
        return await self.coalescer.describe(service, delay=delay)


@asynccontextmanager
async def shared_describer(ecs: EcsClient, *, credentials: Credentials | None, region: str,
                           cluster: str) -> AsyncIterator[SharedDescriber]:
    """Join (or start) the coalescer for this identity, endpoint, region and cluster."""
    loop = asyncio.get_running_loop()
    key = (identity_of(credentials), str(ecs.meta.endpoint_url), region, cluster)
    coalescer = _REGISTRY.get(key)
    if coalescer is None or coalescer.loop is not loop:
        coalescer = DescribeCoalescer(key, cluster, batch_size)
        _REGISTRY[key] = coalescer
    token = coalescer.attach(ecs)
    try:
        yield SharedDescriber(coalescer)
    finally:
        if coalescer.detach(token) and _REGISTRY.get(key) is coalescer:
            del _REGISTRY[key]
            await coalescer.close()
