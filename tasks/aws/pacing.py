"""Client-side pacing of ECS calls: one token bucket per throttle category per
(credentials, Region), shared by every task in the process.

ECS throttles each category of actions with its own bucket per account and Region, so
a single limiter for every ECS call (botocore's ``adaptive`` mode, learned per client)
lets a RegisterTaskDefinition storm slow DescribeServices too. Here each category has
its own bucket, seeded with ECS's published figures; a ThrottlingException cuts only
that category's rate, which then recovers gradually.

Waiting is FIFO-fair without a lock: each caller takes a ticket and goes when the
bucket's credit reaches it, so no event loop owns the bucket and a late caller never
overtakes an early one. After each sleep the waiter looks again, so a rate cut while it
waits is honoured.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

# Copied from sandbox/throttle.py, which takes them from ECS's published request
# throttling table (https://docs.aws.amazon.com/AmazonECS/latest/APIReference/
# request-throttling.html, summarised in /work/shared/reference/ecs-api-facts.md §9).
# tasks/ must not import the sandbox; keep the two in step by hand.
# category -> (burst, sustained per second)
BUCKETS: dict[str, tuple[float, float]] = {
    "service-read": (100, 20),
    "service-modify": (50, 5),
    "cluster-resource-read": (100, 20),
    "cluster-resource-modify": (100, 40),
    "task-definition-modify": (20, 1),
    "task-definition-read": (50, 20),
    "cluster-read": (50, 20),
    "service-deployment": (50, 20),
}

CATEGORIES: dict[str, str] = {
    "DescribeServices": "service-read",
    "ListServices": "service-read",
    "CreateService": "service-modify",
    "UpdateService": "service-modify",
    "DeleteService": "service-modify",
    "DescribeTasks": "cluster-resource-read",
    "ListTasks": "cluster-resource-read",
    "DescribeContainerInstances": "cluster-resource-read",
    "ListContainerInstances": "cluster-resource-read",
    "RunTask": "cluster-resource-modify",
    "StartTask": "cluster-resource-modify",
    "StopTask": "cluster-resource-modify",
    "RegisterTaskDefinition": "task-definition-modify",
    "DeregisterTaskDefinition": "task-definition-modify",
    "DescribeTaskDefinition": "task-definition-read",
    "ListTaskDefinitions": "task-definition-read",
    "ListTaskDefinitionFamilies": "task-definition-read",
    "DescribeClusters": "cluster-read",
    "ListClusters": "cluster-read",
    "DescribeServiceDeployments": "service-deployment",
    "ListServiceDeployments": "service-deployment",
}

# We go a little under ECS's sustained rates: our clock starts when the first request
# leaves, ECS's when it arrives, so pacing at exactly the published rate is throttled
# whenever the first call was slower than a later one (a new connection always is).
HEADROOM = 0.9
# A throttle means someone else (another delegate, the console) shares the account's
# bucket: halve our rate, but never below this, so a call still goes every 2 s.
RATE_FLOOR = 0.5
# Additive recovery: each second without a throttle gives back this share of the seed
# rate, so a halved rate is whole again after 10 s of quiet.
RECOVERY_PER_SECOND = 0.05


@dataclass
class Bucket:
    """Tokens are ``credit - taken``; negative means callers are queued."""

    burst: float
    seed_rate: float
    rate: float
    credit: float
    stamp: float
    taken: int = 0

    def refill(self, now: float) -> None:
        elapsed = max(0.0, now - self.stamp)
        self.stamp = now
        self.credit = min(self.credit + elapsed * self.rate, self.taken + self.burst)
        self.rate = min(self.seed_rate,
                        self.rate + self.seed_rate * RECOVERY_PER_SECOND * elapsed)

    def wait_for(self, ticket: int) -> float:
        """Seconds until ``ticket`` may go at today's rate (0 if it may go now). The
        slack absorbs float rounding, which could otherwise leave a waiter sleeping
        for nanoseconds again and again."""
        short = ticket - self.credit
        return short / self.rate if short > 1e-6 else 0.0

    def throttled(self, now: float) -> None:
        self.refill(now)
        self.rate = max(RATE_FLOOR, self.rate / 2)
        self.credit = min(self.credit, float(self.taken))  # the server says: empty


class Pacer:
    """Buckets per (credentials, Region, category). Time comes in as two callables so
    the tests can drive a fake clock."""

    def __init__(self, now: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], Awaitable[object]] = asyncio.sleep) -> None:
        self._now = now
        self._sleep = sleep
        self._buckets: dict[tuple[str, str, str], Bucket] = {}

    def bucket(self, identity: str, region: str, action: str) -> Bucket | None:
        category = CATEGORIES.get(action)
        if category is None:
            return None
        key = (identity, region, category)
        found = self._buckets.get(key)
        if found is None:
            burst, rate = BUCKETS[category]
            rate *= HEADROOM
            found = self._buckets[key] = Bucket(burst, rate, rate, burst, self._now())
        return found

    async def acquire(self, identity: str, region: str, action: str) -> None:
        """Wait for this action's category to have a token, in arrival order."""
        bucket = self.bucket(identity, region, action)
        if bucket is None:
            return
        bucket.refill(self._now())
        bucket.taken += 1
        ticket = bucket.taken
        try:
            while (delay := bucket.wait_for(ticket)) > 0:
                await self._sleep(delay)
                bucket.refill(self._now())
        except asyncio.CancelledError:
            # A cancelled task's slot goes to whoever asks next (one already asleep
            # keeps the wake-up it computed), rather than being lost.
            bucket.credit += 1
            raise

    def throttled(self, identity: str, region: str, action: str) -> None:
        """ECS throttled this action: slow its category down, and only it."""
        bucket = self.bucket(identity, region, action)
        if bucket is not None:
            bucket.throttled(self._now())


# Process-wide: every task's ECS calls with the same credentials share ECS's buckets.
PACER = Pacer()
