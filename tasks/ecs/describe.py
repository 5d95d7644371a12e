"""One DescribeServices call for up to ten services: concurrent watchers share polls.

Watchers on the same (credentials identity, endpoint, region, cluster) share one
:class:`DescribeCoalescer`. A watcher asks for its service "``delay`` seconds from
now"; when the earliest request falls due, every request due within half its own poll
interval is served by the same round, so watchers with the same interval fall into
step after their first poll and one round costs ``ceil(services / 10)`` calls. The
coalescer borrows the AWS client of any current subscriber (they share credentials),
so it owns no client and stops with its last subscriber.

The coalescers and their counters belong to a :class:`Describers`, one per task runtime
(event loop), made on first use like the pooled AWS clients and closed with them at
shutdown (``close_describers``, a task registry shutdown hook).

Throttling never fails a watch: the per-category pacer (tasks/aws/pacing.py) and
botocore's standard retries come first, then tenacity backs off (jittered,
exponential) for as long as the caller's timeout allows.
"""

from __future__ import annotations

import asyncio
import itertools
import weakref
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager, suppress
from dataclasses import dataclass, field
from typing import Any

from tenacity import AsyncRetrying, retry_if_exception

from tasks.aws.credentials import AccessKeyCredentials, Credentials
from tasks.aws.ports import EcsClient
from tasks.ecs.errors import BACKOFF, is_throttling

MAX_SERVICES_PER_CALL = 10  # DescribeServices' own limit


@dataclass
class DescribeStats:
    """Counters of one :class:`Describers`, read by the bench and by tests."""

    calls: int = 0
    rounds: int = 0
    throttled: int = 0
    largest_round: int = 0  # calls made by the busiest round
    services_in_largest_round: int = 0

    def reset(self) -> None:
        self.calls = self.rounds = self.throttled = 0
        self.largest_round = self.services_in_largest_round = 0


@dataclass
class _Request:
    service: str
    due: float
    slack: float
    future: asyncio.Future[dict[str, Any] | None] = field(repr=False)


class DescribeCoalescer:
    def __init__(self, key: tuple[str, ...], cluster: str, batch: int,
                 stats: DescribeStats) -> None:
        self.key = key
        self.stats = stats
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
        self.stats.rounds += 1
        names = list(dict.fromkeys(r.service for r in requests))
        batches = [names[i:i + self.batch] for i in range(0, len(names), self.batch)]
        calls_before = self.calls
        try:
            answers = await asyncio.gather(*(self._call(b) for b in batches),
                                           return_exceptions=True)
        except asyncio.CancelledError:
            # Closed mid-round (shutdown): its watchers see a cancelled poll, not a hang.
            for request in requests:
                request.future.cancel()
            raise
        made = self.calls - calls_before
        if made > self.stats.largest_round:
            self.stats.largest_round, self.stats.services_in_largest_round = made, len(names)
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
                self.stats.throttled += 1
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
                self.stats.calls += 1
                answer = await client.describe_services(cluster=self.cluster,
                                                        services=names)
        found: dict[str, dict[str, Any] | None] = dict.fromkeys(names)
        for service in answer.get("services", []):
            for key in (service.get("serviceName"), service.get("serviceArn")):
                if key in found:
                    found[key] = service
        return found


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


class Describers:
    """The coalescers of one task runtime, by (identity, endpoint, region, cluster).

    ``batch_size`` is the services per call of the coalescers it makes (the bench sets 1
    to measure the uncoalesced cost); ``stats`` counts the calls of all of them.
    """

    def __init__(self, *, batch_size: int = MAX_SERVICES_PER_CALL) -> None:
        self.batch_size = batch_size
        self.stats = DescribeStats()
        self._coalescers: dict[tuple[str, ...], DescribeCoalescer] = {}

    @property
    def active(self) -> int:
        """Coalescers with subscribers now."""
        return len(self._coalescers)

    @asynccontextmanager
    async def shared(self, ecs: EcsClient, *, credentials: Credentials | None, region: str,
                     cluster: str) -> AsyncIterator[SharedDescriber]:
        """Join (or start) the coalescer for this identity, endpoint, region and cluster."""
        key = (identity_of(credentials), str(ecs.meta.endpoint_url), region, cluster)
        coalescer = self._coalescers.get(key)
        if coalescer is None:
            coalescer = DescribeCoalescer(key, cluster, self.batch_size, self.stats)
            self._coalescers[key] = coalescer
        token = coalescer.attach(ecs)
        try:
            yield SharedDescriber(coalescer)
        finally:
            if coalescer.detach(token) and self._coalescers.get(key) is coalescer:
                del self._coalescers[key]
                await coalescer.close()

    async def aclose(self) -> None:
        """Stop every coalescer; a watcher still waiting sees its poll cancelled."""
        coalescers, self._coalescers = list(self._coalescers.values()), {}
        for coalescer in coalescers:
            await coalescer.close()


_runtimes: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Describers] = (
    weakref.WeakKeyDictionary())


def describers() -> Describers:
    """The running task runtime's describers (made on first use)."""
    loop = asyncio.get_running_loop()
    found = _runtimes.get(loop)
    if found is None:
        found = _runtimes[loop] = Describers()
    return found


async def close_describers() -> None:
    """Close the running loop's describers (a shutdown hook, next to the client pool's)."""
    found = _runtimes.pop(asyncio.get_running_loop(), None)
    if found is not None:
        await found.aclose()


@asynccontextmanager
async def describer_runtime(*, batch_size: int = MAX_SERVICES_PER_CALL,
                            ) -> AsyncIterator[Describers]:
    """Fresh describers for the running loop until the block ends (then closed, and the
    previous ones back): the bench's phases, each with its own batch size and counters."""
    loop = asyncio.get_running_loop()
    previous = _runtimes.get(loop)
    fresh = _runtimes[loop] = Describers(batch_size=batch_size)
    try:
        yield fresh
    finally:
        await fresh.aclose()
        if previous is not None:
            _runtimes[loop] = previous
        elif _runtimes.get(loop) is fresh:
            del _runtimes[loop]


def shared_describer(ecs: EcsClient, *, credentials: Credentials | None, region: str,
                     cluster: str) -> AbstractAsyncContextManager[SharedDescriber]:
    """Join the running runtime's coalescer for this identity, endpoint, region, cluster."""
    return describers().shared(ecs, credentials=credentials, region=region, cluster=cluster)
