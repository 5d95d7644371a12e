"""AWS clients report every attempt to the task's observer, throttled retries included,
and pooled clients report to the task that made the call."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import pytest
from botocore.exceptions import ClientError

from agent.context import TaskContext, TaskLog
from sandbox import Sandbox
from tasks.aws.clients import aws_session
from tasks.aws.credentials import InheritCredentials
from testkit.sandbox_fixture import Aws


@pytest.fixture
def throttling(aws: Aws, sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for key, value in aws.environment().items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "2")
    sandbox.set_throttle(True)
    yield
    sandbox.set_throttle(False)


def context(seen: list[tuple[str, str, bool]]) -> TaskContext:
    return TaskContext(task_id="t", type="test", params={}, secrets={}, context={},
                       log=TaskLog(lambda _p: None), files=None,  # type: ignore[arg-type]
                       aws_call_observer=lambda s, o, t: seen.append((s, o, t)))


@pytest.mark.filterwarnings("ignore::UserWarning")  # moto: ThrottlingException has no shape
async def test_throttled_attempts_are_counted(aws: Aws, throttling: None) -> None:
    seen: list[tuple[str, str, bool]] = []
    other = aws.client("ecs")  # another caller in the account, unpaced, empties the bucket
    for _ in range(100):
        with contextlib.suppress(ClientError):
            other.describe_services(cluster=aws.cluster, services=["web"])
    async with aws_session(context(seen), InheritCredentials(), aws.region) as session:
        ecs = await session.client("ecs")
        for _ in range(150):  # more than the read bucket's burst of 100
            with contextlib.suppress(ClientError):  # a throttle that outlived the retries
                await ecs.describe_services(cluster=aws.cluster, services=["web"])
    assert len(seen) >= 150
    assert {(s, o) for s, o, _ in seen} == {("ecs", "DescribeServices")}
    assert any(throttled for _, _, throttled in seen)
