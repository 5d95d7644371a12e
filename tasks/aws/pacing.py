"""Client-side pacing of ECS calls: one token bucket per throttle category per
(credentials, Region), shared by every task in the process.

ECS throttles each category of actions with its own bucket per account and Region, so
a single limiter for every ECS call (botocore's ``adaptive`` mode, learned per client)
lets a RegisterTaskDefinition storm slow DescribeServices too. Here each category has
its own bucket, seeded with ECS's published figures; a ThrottlingException cuts only
that category's rate, which then recovers gradually.

Waiting is ordered by when the calling task made its first ECS call (then by arrival),
so the deploys that started first finish first: in arrival order, the status polls of
the first deploys of a batch of N waited behind the other N - 1 deploys' first
DescribeServices, and a throttled call's retry went to the back of the queue. There is
no lock and no event loop owns a bucket: each waiter sleeps until the credit reaches its
place in the queue and then looks again, so a rate cut or a more senior caller arriving
while it waits is honoured.
"""

from __future__ import annotations

import asyncio
import bisect
import itertools
import math
import time
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from dataclasses import dataclass, field

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

# We pace at ECS's sustained rates but keep back part of the burst. Our clock starts
# when a request leaves, ECS's when it arrives, so at exactly the published figures a
# call that arrives sooner after the previous one than it left (the first call, on a new
# connection, is always the slowest) is throttled. Tokens kept back absorb that: with
# RESERVE_SECONDS' worth of the rate (at least one token) unused, a call may arrive that
# much early. A reserve costs its tokens once; a rate under ECS's (10 % here before)
# costs that share of every long batch (bench/ecs_pacing.py, N = 120: the wall 13.5 %
# over the floor, deploys up to 15 s after their own calls' earliest end).
# If ECS refills slower than published, a throttle halves the rate below.
# Half a second (the first try) was too little at N = 2,000: 72 DescribeServices were
# throttled, most likely calls that queued in the sandbox behind a simulator step (it
# holds moto's lock) and then arrived together; each throttle halved the rate for the
# deploys being watched. With 1.5 s: no throttle, and the latest of 2,000 deploys 3.3 s
# after its own earliest (bench/README.md). Rounded down, so RegisterTaskDefinition
# (1 a second) keeps back only one token.
RESERVE_SECONDS = 1.5
# A throttle means someone else (another delegate, the console) shares the account's
# bucket: halve our rate, but never below this, so a call still goes every 2 s.
RATE_FLOOR = 0.5
# Additive recovery: each second without a throttle gives back this share of the seed
# rate, so a halved rate is whole again after 10 s of quiet.
RECOVERY_PER_SECOND = 0.05


# When the current task made its first ECS call: its place in every bucket's queue. Set
# on that first call, so a task's later calls, and the tasks it starts afterwards (the
# shared DescribeServices poller is started by the first deploy that watches), keep it.
_SENIORITY: ContextVar[float | None] = ContextVar("ecs_pacing_seniority", default=None)

Place = tuple[float, int]  # (seniority, arrival)


def reserve(burst: float, rate: float) -> float:
    """Tokens of the published burst kept back (see RESERVE_SECONDS)."""
    return min(burst - 1, max(1.0, math.floor(rate * RESERVE_SECONDS)))


@dataclass
class Bucket:
    """Tokens are ``credit - served``; ``waiting`` holds the queue's places, in order."""

    burst: float
    seed_rate: float
    rate: float
    credit: float
    stamp: float
    served: int = 0
    waiting: list[Place] = field(default_factory=list)

    def refill(self, now: float) -> None:
        elapsed = max(0.0, now - self.stamp)
        self.stamp = now
        self.credit = min(self.credit + elapsed * self.rate, self.served + self.burst)
        self.rate = min(self.seed_rate,
                        self.rate + self.seed_rate * RECOVERY_PER_SECOND * elapsed)

    def wait_for(self, place: Place) -> float:
        """Seconds until ``place`` may go at today's rate (0 if it may go now): when
        the credit covers it and everyone ahead of it. The slack absorbs float rounding,
        which could otherwise leave a waiter sleeping for nanoseconds again and again."""
        ahead = bisect.bisect_left(self.waiting, place)
        short = self.served + ahead + 1 - self.credit
        return short / self.rate if short > 1e-6 else 0.0

    def leave(self, place: Place) -> None:
        index = bisect.bisect_left(self.waiting, place)
        if index < len(self.waiting) and self.waiting[index] == place:
            del self.waiting[index]

    def throttled(self, now: float) -> None:
        self.refill(now)
        self.rate = max(RATE_FLOOR, self.rate / 2)
        self.credit = min(self.credit, float(self.served))  # the server says: empty


class Pacer:
    """Buckets per (credentials, Region, category). Time comes in as two callables so
    the tests can drive a fake clock."""

    def __init__(self, now: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], Awaitable[object]] = asyncio.sleep) -> None:
        self._now = now
        self._sleep = sleep
        self._buckets: dict[tuple[str, str, str], Bucket] = {}
        self._arrivals = itertools.count()

    def bucket(self, identity: str, region: str, action: str) -> Bucket | None:
        category = CATEGORIES.get(action)
        if category is None:
            return None
        key = (identity, region, category)
        found = self._buckets.get(key)
        if found is None:
            burst, rate = BUCKETS[category]
            burst -= reserve(burst, rate)
            found = self._buckets[key] = Bucket(burst, rate, rate, burst, self._now())
        return found

    def _seniority(self) -> float:
        seniority = _SENIORITY.get()
        if seniority is None:
            seniority = self._now()
            _SENIORITY.set(seniority)
        return seniority

    async def acquire(self, identity: str, region: str, action: str) -> None:
        """Wait for this action's category to have a token, in seniority order."""
        bucket = self.bucket(identity, region, action)
        if bucket is None:
            return
        place = (self._seniority(), next(self._arrivals))
        bucket.refill(self._now())
        bisect.insort(bucket.waiting, place)
        try:
            while (delay := bucket.wait_for(place)) > 0:
                await self._sleep(delay)
                bucket.refill(self._now())
        finally:
            # Gone, served or cancelled: a cancelled waiter takes no token, and those
            # behind it move up (one already asleep keeps the wake-up it computed).
            bucket.leave(place)
        bucket.served += 1

    def throttled(self, identity: str, region: str, action: str) -> None:
        """ECS throttled this action: slow its category down, and only it."""
        bucket = self.bucket(identity, region, action)
        if bucket is not None:
            bucket.throttled(self._now())


# Process-wide: every task's ECS calls with the same credentials share ECS's buckets.
PACER = Pacer()
