"""The ECS pacer: a bucket per throttle category at the published rate with part of the
burst kept back, waiting in order of the tasks' first calls, halving on a throttle
and gradual recovery. Only time is faked: a clock whose sleepers wake when the test
moves time on to the earliest of them."""

from __future__ import annotations

import asyncio
import heapq
import itertools

import pytest

from tasks.aws.pacing import Pacer, reserve

REGION = "eu-west-1"


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._order = itertools.count()

    def time(self) -> float:
        return self.now

    async def sleep(self, delay: float) -> None:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (self.now + delay, next(self._order), future))
        await future

    async def _settle(self) -> None:
        for _ in range(20):  # let every runnable task reach its next sleep or finish
            await asyncio.sleep(0)

    async def run(self, *coros: object) -> None:
        """Run the coroutines to the end, moving time to each next wake-up."""
        tasks = [asyncio.ensure_future(c) for c in coros]  # type: ignore[call-overload]
        async with asyncio.timeout(10):
            while True:
                await self._settle()
                if all(t.done() for t in tasks):
                    break
                wake, _, future = heapq.heappop(self._sleepers)
                if future.done():  # its sleeper was cancelled
                    continue
                self.now = max(self.now, wake)
                future.set_result(None)
        for t in tasks:
            t.result()


def pacer_on(clock: FakeClock) -> Pacer:
    return Pacer(now=clock.time, sleep=clock.sleep)


async def timed_calls(clock: FakeClock, pacer: Pacer, action: str, n: int,
                      done: list[tuple[str, float]], identity: str = "me") -> None:
    for _ in range(n):
        await pacer.acquire(identity, REGION, action)
        done.append((action, clock.now))


async def drain(pacer: Pacer, action: str) -> int:
    """Spend a category's burst at once; how many calls it took."""
    bucket = pacer.bucket("me", REGION, action)
    assert bucket is not None
    n = int(bucket.burst)
    for _ in range(n):
        await pacer.acquire("me", REGION, action)
    return n


def test_the_burst_kept_back_covers_one_and_a_half_seconds_and_at_least_a_token() -> None:
    assert reserve(20, 1) == 1  # task-definition-modify
    assert reserve(50, 5) == 7  # service-modify
    assert reserve(100, 20) == 30  # service-read
    assert reserve(2, 40) == 1  # never the whole burst


async def test_a_category_bursts_then_goes_at_its_sustained_rate() -> None:
    clock = FakeClock()
    pacer = pacer_on(clock)
    done: list[tuple[str, float]] = []
    # task-definition-modify: burst 20 (one kept back), then exactly 1 a second
    await clock.run(timed_calls(clock, pacer, "RegisterTaskDefinition", 25, done))
    times = [t - 1000.0 for _, t in done]
    assert times[:19] == [0.0] * 19
    assert times[19:] == pytest.approx([float(n) for n in range(1, 7)])


async def test_an_exhausted_category_does_not_delay_another() -> None:
    clock = FakeClock()
    pacer = pacer_on(clock)
    done: list[tuple[str, float]] = []
    await clock.run(
        timed_calls(clock, pacer, "RegisterTaskDefinition", 30, done),
        timed_calls(clock, pacer, "CreateService", 43, done),  # service-modify: 50 - 7
        timed_calls(clock, pacer, "DescribeServices", 70, done),  # service-read: 100 - 30
    )
    assert max(t for a, t in done if a != "RegisterTaskDefinition") == 1000.0
    assert max(t for a, t in done if a == "RegisterTaskDefinition") == pytest.approx(
        1000.0 + 11)


async def test_credentials_and_regions_have_their_own_buckets() -> None:
    clock = FakeClock()
    pacer = pacer_on(clock)
    for identity in ("me", "other"):
        for _ in range(19):
            await pacer.acquire(identity, REGION, "RegisterTaskDefinition")
        await pacer.acquire(identity, "us-east-1", "RegisterTaskDefinition")
    assert clock.now == 1000.0
    await pacer.acquire("me", REGION, "NotAnEcsCategory")
    assert clock.now == 1000.0


async def test_a_throttle_halves_the_rate_and_it_recovers() -> None:
    clock = FakeClock()
    pacer = pacer_on(clock)
    done: list[tuple[str, float]] = []
    await clock.run(timed_calls(clock, pacer, "CreateService", 43, done))  # the burst
    pacer.throttled("me", REGION, "CreateService")
    done.clear()
    await clock.run(timed_calls(clock, pacer, "CreateService", 3, done))
    gaps = [b - a for (_, a), (_, b) in zip([("", 1000.0), *done], done, strict=False)]
    # 5/s halved to 2.5/s: the first token takes 0.4 s, and recovery of 0.25/s
    # a second speeds up each one after
    assert gaps[0] == pytest.approx(1 / 2.5)
    assert gaps[1] < gaps[0] and gaps[2] < gaps[1]
    clock.now += 60  # a quiet minute: whole again
    bucket = pacer.bucket("me", REGION, "CreateService")
    assert bucket is not None
    bucket.refill(clock.now)
    assert bucket.rate == 5.0
    assert pacer.bucket("me", REGION, "DescribeServices") is not None


async def test_repeated_throttles_stop_at_the_floor() -> None:
    clock = FakeClock()
    pacer = pacer_on(clock)
    for _ in range(10):
        pacer.throttled("me", REGION, "RegisterTaskDefinition")
    bucket = pacer.bucket("me", REGION, "RegisterTaskDefinition")
    assert bucket is not None and bucket.rate == 0.5
    other = pacer.bucket("me", REGION, "DescribeServices")
    assert other is not None and other.rate == 20.0


async def test_waiters_of_one_task_go_in_arrival_order() -> None:
    clock = FakeClock()
    pacer = pacer_on(clock)
    await drain(pacer, "RegisterTaskDefinition")
    order: list[int] = []

    async def caller(n: int) -> None:
        await pacer.acquire("me", REGION, "RegisterTaskDefinition")
        order.append(n)

    await clock.run(*(caller(n) for n in range(8)))
    assert order == list(range(8))
    assert clock.now == pytest.approx(1000.0 + 8)


async def test_a_throttle_while_waiting_slows_the_queue() -> None:
    clock = FakeClock()
    pacer = pacer_on(clock)
    await drain(pacer, "RegisterTaskDefinition")
    done: list[tuple[str, float]] = []

    async def throttle_soon() -> None:
        await clock.sleep(0.5)
        pacer.throttled("me", REGION, "RegisterTaskDefinition")

    await clock.run(timed_calls(clock, pacer, "RegisterTaskDefinition", 1, done),
                    throttle_soon())
    assert done[0][1] - 1000.0 > 1.2  # the waiter saw the cut, waited longer


async def test_a_cancelled_waiter_gives_its_slot_to_the_next() -> None:
    clock = FakeClock()
    pacer = pacer_on(clock)
    await drain(pacer, "RegisterTaskDefinition")
    done: list[tuple[str, float]] = []
    first = asyncio.ensure_future(pacer.acquire("me", REGION, "RegisterTaskDefinition"))
    await asyncio.sleep(0)  # it has taken its ticket and sleeps

    first.cancel()
    await asyncio.sleep(0)
    assert first.cancelled()
    await clock.run(timed_calls(clock, pacer, "RegisterTaskDefinition", 1, done))
    assert done[0][1] == pytest.approx(1000.0 + 1)  # the first slot, not the second


async def test_a_task_that_began_first_is_served_before_later_tasks() -> None:
    """Deploys that started early are not starved by the later ones' first calls: at
    N = 300 the first deploys' status polls waited behind 200 later deploys' initial
    DescribeServices (11 s), at N = 2000 behind a thousand (50 s)."""
    clock = FakeClock()
    pacer = pacer_on(clock)
    done: list[tuple[str, float]] = []

    async def early() -> None:
        await pacer.acquire("me", REGION, "RegisterTaskDefinition")  # its first call
        await clock.sleep(1.0)  # the later tasks' calls queue meanwhile
        await timed_calls(clock, pacer, "RegisterTaskDefinition", 1, done, "me")
        done[-1] = ("early", done[-1][1])

    async def late() -> None:
        await clock.sleep(0.5)
        await timed_calls(clock, pacer, "RegisterTaskDefinition", 1, done)

    await clock.run(early(), *(late() for _ in range(30)))
    early_at = next(t for who, t in done if who == "early")
    queued = sorted(t for who, t in done if who != "early" and t > 1000.5)
    assert len(queued) >= 5
    assert early_at < queued[0]  # ahead of every late task that had to wait
