"""Concurrent watchers share batched DescribeServices calls (against the sandbox)."""

from __future__ import annotations

import asyncio
import math
import uuid
from collections.abc import AsyncIterator
from types import SimpleNamespace
from typing import Any

import aioboto3
import pytest
from botocore.config import Config

from tasks.aws.credentials import AccessKeyCredentials, InheritCredentials
from tasks.ecs import describe
from tasks.ecs.describe import shared_describer
from testkit.sandbox_fixture import Aws

REGION = "us-east-1"  # the sandbox's


@pytest.fixture
async def ecs(aws: Aws) -> AsyncIterator[Any]:
    env = aws.environment()
    session = aioboto3.Session(aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
                               aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
                               region_name=REGION)
    async with session.client("ecs", endpoint_url=aws.endpoint_url,
                              config=Config(retries={"max_attempts": 1})) as client:
        client.network = aws.network_configuration
        yield client


async def make_services(ecs: Any, n: int) -> tuple[str, list[str]]:
    # A cluster per call, so each test's coalescer is its own.
    cluster = f"c-{uuid.uuid4().hex[:8]}"
    await ecs.create_cluster(clusterName=cluster)
    td = await ecs.register_task_definition(
        family="web", requiresCompatibilities=["FARGATE"], networkMode="awsvpc", cpu="256",
        memory="512", containerDefinitions=[{"name": "web", "image": "nginx", "memory": 128}])
    arn = td["taskDefinition"]["taskDefinitionArn"]
    names = [f"svc-{i:03d}" for i in range(n)]
    await asyncio.gather(*(ecs.create_service(cluster=cluster, serviceName=name,
                                              taskDefinition=arn, desiredCount=1,
                                              launchType="FARGATE",
                                              networkConfiguration=ecs.network)
                           for name in names))
    return cluster, names


@pytest.mark.parametrize("watchers", [1, 10, 25])
async def test_n_watchers_cost_ceil_n_over_10_calls_per_round(ecs: Any, watchers: int) -> None:
    cluster, names = await make_services(ecs, watchers)
    rounds = 3

    async def watch(name: str) -> list[str | None]:
        async with shared_describer(ecs, credentials=InheritCredentials(), region=REGION,
                                    cluster=cluster) as describer:
            seen = []
            for _ in range(rounds):
                service = await describer.describe(name, delay=0.05)
                seen.append(service["serviceName"] if service else None)
            return seen

    before = describe.describers().stats.calls
    # The coalescer is private to these watchers (its cluster is new), so its own
    # counters are exact; the runtime's moves by the same amount.
    results = await asyncio.gather(*(watch(n) for n in names))
    assert results == [[n] * rounds for n in names]
    assert describe.describers().stats.calls - before == rounds * math.ceil(watchers / 10)
    assert describe.describers().active == 0


async def test_watchers_joining_late_fall_into_step(ecs: Any) -> None:
    cluster, names = await make_services(ecs, 20)
    async with shared_describer(ecs, credentials=InheritCredentials(), region=REGION,
                                cluster=cluster) as describer:
        coalescer = describer.coalescer
        first = [asyncio.create_task(describer.describe(n, delay=0.2)) for n in names[:10]]
        late = [asyncio.create_task(describer.describe(n, delay=0.25)) for n in names[10:]]
        await asyncio.gather(*first, *late)
        assert coalescer.rounds == 1
        assert coalescer.calls == 2


async def test_missing_service_is_none(ecs: Any) -> None:
    cluster, _ = await make_services(ecs, 1)
    async with shared_describer(ecs, credentials=InheritCredentials(), region=REGION,
                                cluster=cluster) as describer:
        assert await describer.describe("nope", delay=0) is None


async def test_identities_do_not_share(ecs: Any) -> None:
    cluster, _ = await make_services(ecs, 1)
    a = AccessKeyCredentials(accessKeyId="AKIA1", secretKeyRef="s")
    b = AccessKeyCredentials(accessKeyId="AKIA2", secretKeyRef="s")
    async with (shared_describer(ecs, credentials=a, region=REGION, cluster=cluster) as da,
                shared_describer(ecs, credentials=a, region=REGION, cluster=cluster) as da2,
                shared_describer(ecs, credentials=b, region=REGION, cluster=cluster) as db):
        assert da.coalescer is da2.coalescer
        assert da.coalescer is not db.coalescer
    assert describe.describers().active == 0


class ThrottlingEcs:
    """A fake ECS client: refuses the first ``refusals`` calls as AWS does when throttled."""

    meta = SimpleNamespace(endpoint_url="http://fake")  # as botocore's client.meta

    def __init__(self, refusals: int) -> None:
        self.refusals = refusals
        self.calls = 0

    async def describe_services(self, *, cluster: str, services: list[str]) -> dict[str, Any]:
        from botocore.exceptions import ClientError

        self.calls += 1
        if self.calls <= self.refusals:
            raise ClientError({"Error": {"Code": "ThrottlingException",
                                         "Message": "Rate exceeded"}}, "DescribeServices")
        return {"services": [{"serviceName": s, "status": "ACTIVE"} for s in services],
                "failures": []}


async def test_throttling_backs_off_and_never_fails_the_watch(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from tenacity import wait_none

    monkeypatch.setattr(describe, "BACKOFF", wait_none())  # time only: no real backoff
    ecs = ThrottlingEcs(refusals=7)
    before = describe.describers().stats.throttled
    async with shared_describer(ecs, credentials=None, region=REGION,
                                cluster="c") as describer:
        answers = await asyncio.gather(*(describer.describe(f"s{i}", delay=0)
                                         for i in range(3)))
    assert [a["serviceName"] for a in answers if a] == ["s0", "s1", "s2"]
    assert ecs.calls == 8
    assert describe.describers().stats.throttled - before == 7


class SlowEcs(ThrottlingEcs):
    """Answers only once ``release`` is set: a poll that is still in flight."""

    def __init__(self) -> None:
        super().__init__(refusals=0)
        self.called = asyncio.Event()
        self.release = asyncio.Event()

    async def describe_services(self, *, cluster: str, services: list[str]) -> dict[str, Any]:
        self.called.set()
        await self.release.wait()
        return await super().describe_services(cluster=cluster, services=services)


async def test_each_runtime_has_its_own_counters_and_batch_size() -> None:
    outer = describe.describers()
    assert describe.describers() is outer  # one per running loop
    ecs = ThrottlingEcs(refusals=0)
    async with describe.describer_runtime(batch_size=1) as fresh:
        assert describe.describers() is fresh
        async with shared_describer(ecs, credentials=None, region=REGION,
                                    cluster="c") as describer:
            await asyncio.gather(*(describer.describe(f"s{i}", delay=0) for i in range(3)))
    assert (fresh.stats.calls, fresh.stats.rounds, ecs.calls) == (3, 1, 3)  # one per call
    assert describe.describers() is outer and outer.stats.calls == 0


async def test_closing_the_runtime_stops_its_coalescers() -> None:
    ecs = SlowEcs()
    async with describe.describer_runtime() as runtime:
        async def watch() -> dict[str, Any] | None:
            async with runtime.shared(ecs, credentials=None, region=REGION,
                                      cluster="c") as describer:
                return await describer.describe("s0", delay=0)

        watcher = asyncio.create_task(watch())
        async with asyncio.timeout(5):
            await ecs.called.wait()  # the round's call is in flight
        assert runtime.active == 1
        await describe.close_describers()  # the delegate's shutdown hook
        assert runtime.active == 0
        with pytest.raises(asyncio.CancelledError):
            async with asyncio.timeout(5):
                await watcher
    assert describe.describers() is not runtime


def test_the_delegate_closes_describers_before_the_clients_they_borrow() -> None:
    from agent.context import TaskRegistry
    from tasks import register_all
    from tasks.aws.clients import close_pooled_clients

    registry = TaskRegistry()
    register_all(registry)
    hooks = registry.shutdown_hooks
    assert hooks.index(describe.close_describers) < hooks.index(close_pooled_clients)
