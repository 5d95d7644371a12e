"""Against the throttling sandbox: the task-definition bucket running dry paces
registrations but leaves DescribeServices, sharing the same pooled client, at full
speed; and the pacing keeps ECS from throttling at all."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import pytest

from agent.context import TaskContext, TaskLog
from sandbox import Sandbox
from tasks.aws.clients import aws_session
from tasks.aws.credentials import InheritCredentials
from testkit.sandbox_fixture import Aws

REGISTRATIONS = 23  # the task-definition-modify burst of 20, then 1 a second


@pytest.fixture
def throttling(aws: Aws, sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for key, value in aws.environment().items():
        monkeypatch.setenv(key, value)
    sandbox.set_throttle(True)
    yield
    sandbox.set_throttle(False)


def context(seen: list[tuple[str, bool]]) -> TaskContext:
    return TaskContext(task_id="t", type="test", params={}, secrets={}, context={},
                       log=TaskLog(lambda _p: None), files=None,  # type: ignore[arg-type]
                       aws_call_observer=lambda _s, o, t: seen.append((o, t)))


async def test_a_dry_category_does_not_delay_another(aws: Aws, throttling: None) -> None:
    seen: list[tuple[str, bool]] = []
    finished: dict[str, float] = {}
    async with aws_session(context(seen), InheritCredentials(), aws.region) as session:
        ecs = await session.client("ecs")
        start = time.monotonic()
        dry = asyncio.Event()

        async def register() -> None:
            for n in range(REGISTRATIONS):
                if n == 20:
                    dry.set()  # the burst is spent: the bucket is dry from here
                await ecs.register_task_definition(
                    family=f"paced-{n}", containerDefinitions=[
                        {"name": "app", "image": "nginx:1.27", "memory": 128}])
            finished["register"] = time.monotonic() - start

        async def describe() -> None:
            await dry.wait()
            began = time.monotonic()
            for _ in range(40):
                await ecs.describe_services(cluster=aws.cluster, services=["web"])
            finished["describe"] = time.monotonic() - start
            finished["describing"] = time.monotonic() - began

        await asyncio.gather(register(), describe())
    assert finished["register"] >= REGISTRATIONS - 20 - 0.5  # paced at 1 a second
    assert finished["describe"] < finished["register"] - 1.0  # and the reads were not
    assert not [op for op, throttled in seen if throttled]  # paced below ECS's limits
