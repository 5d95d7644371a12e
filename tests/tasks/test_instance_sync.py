"""The instances.sync answer's shape: tasks grouped by what they share, and an answer too
large for one message cut at its largest services, said, never a lost result."""

from __future__ import annotations

import json
import os
from typing import Any

from manager.instances import unpack
from tasks.instances.sync import OUTPUT_BUDGET, fit, groups_of, prefixes_of
from wire.lookups import SERVICES_ENCODING

PREFIX = "arn:aws:ecs:us-east-1:123456789012:task/prod"
TD = "arn:aws:ecs:us-east-1:123456789012:task-definition/web:{}"


def _task(n: int, rev: int = 1, digest: str = "sha256:" + "a" * 64) -> dict[str, Any]:
    return {"taskArn": f"{PREFIX}/{n:032x}", "taskDefinitionArn": TD.format(rev),
            "startedBy": "ecs-svc/1234567890123456789", "lastStatus": "RUNNING",
            "healthStatus": "HEALTHY", "launchType": "FARGATE",
            "availabilityZone": "us-east-1a", "group": "service:web",
            "containers": [{"name": "web", "image": "nginx:1.27", "imageDigest": digest}]}


def _groups(tasks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return groups_of(tasks, prefixes_of(tasks))


def test_tasks_sharing_a_revision_and_image_share_one_group() -> None:
    tasks = [_task(1), _task(2), _task(3, rev=2), _task(4, digest="sha256:b")]
    assert prefixes_of(tasks) == {
        "taskArnPrefix": PREFIX + "/",
        "taskDefinitionArnPrefix": "arn:aws:ecs:us-east-1:123456789012:task-definition/"}
    groups = _groups(tasks)
    assert [(g["taskDefinition"], len(g["tasks"])) for g in groups] \
        == [("web:1", 2), ("web:2", 1), ("web:1", 1)]
    assert groups[0]["tasks"][0][:4] == [f"{1:032x}", "ecs-svc/1234567890123456789",
                                         "RUNNING", "HEALTHY"]


def test_four_thousand_tasks_fit_one_message() -> None:
    services = {f"svc-{i:04d}": {
        "status": "ACTIVE", "taskDefinition": "web:1", "desired": 2, "running": 2,
        "primaryDeployment": "ecs-svc/1234567890123456789",
        "groups": _groups([_task(2 * i), _task(2 * i + 1)])} for i in range(2000)}
    assert len(json.dumps(services)) > OUTPUT_BUDGET  # as plain JSON it would not fit
    packed, truncated = fit(services)
    assert not truncated and len(packed) <= OUTPUT_BUDGET
    assert unpack({"services": packed, "servicesEncoding": SERVICES_ENCODING}) == services


def test_too_large_an_answer_leaves_out_the_largest_services_and_says_so() -> None:
    # Random task ids and digests (they do not compress), a group per task: far over
    # one message even packed.
    services = {"big": {"status": "ACTIVE", "groups": _groups(
        [_task(int.from_bytes(os.urandom(16)), digest="sha256:" + os.urandom(32).hex())
         for _ in range(20000)])},
        "small": {"status": "ACTIVE", "groups": _groups([_task(99999)])}}
    packed, truncated = fit(services)
    assert truncated and len(packed) <= OUTPUT_BUDGET
    got = unpack({"services": packed, "servicesEncoding": SERVICES_ENCODING})
    assert got["big"]["groups"] == [] and got["big"]["tasksLeftOut"] == 20000
    assert len(got["small"]["groups"]) == 1
