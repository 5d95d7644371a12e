"""ECS throttling is off by default and follows the published buckets when switched on."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError

from sandbox import Sandbox
from testkit.sandbox_fixture import Aws
from tests.sandbox.ecs_helpers import register


def test_task_definition_registrations_are_throttled_past_the_burst(
    aws: Aws, sandbox: Sandbox
) -> None:
    ecs = aws.client("ecs")
    for _ in range(25):  # above the burst of 20: unthrottled by default
        register(ecs, "free")
    sandbox.reset()  # fresh buckets
    sandbox.set_throttle(True)
    try:
        with pytest.raises(ClientError) as info:
            for _ in range(25):
                register(ecs, "limited")
        assert info.value.response["Error"]["Code"] == "ThrottlingException"
        assert info.value.response["Error"]["Message"] == "Rate exceeded"
    finally:
        sandbox.set_throttle(False)
