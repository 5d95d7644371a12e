"""One-off tasks (RunTask) run, exit with the configured code and stay visible STOPPED."""

from __future__ import annotations

from typing import Any

from testkit.sandbox_fixture import Aws, eventually
from tests.sandbox.ecs_helpers import register


def run(aws: Aws, ecs: Any, family: str, **extra: Any) -> dict[str, Any]:
    answer = ecs.run_task(cluster=aws.cluster, taskDefinition=family, launchType="FARGATE",
                          networkConfiguration=aws.network_configuration, **extra)
    assert answer["failures"] == []
    [task] = answer["tasks"]
    return dict(task)


def wait_stopped(aws: Aws, ecs: Any, arn: str) -> dict[str, Any]:
    def stopped() -> dict[str, Any] | None:
        [task] = ecs.describe_tasks(cluster=aws.cluster, tasks=[arn])["tasks"]
        return task if task["lastStatus"] == "STOPPED" else None

    return eventually(stopped)


def test_task_walks_to_stopped_with_exit_code_zero(aws: Aws) -> None:
    ecs = aws.client("ecs")
    register(ecs, "job", environment={"SANDBOX_RUN_SECONDS": "0.2"})  # no container memory
    task = run(aws, ecs, "job")
    assert task["lastStatus"] == "PROVISIONING" and task["desiredStatus"] == "RUNNING"
    assert task["group"] == "family:job"
    seen = set()

    def observe() -> dict[str, Any] | None:
        [now] = ecs.describe_tasks(cluster=aws.cluster, tasks=[task["taskArn"]])["tasks"]
        seen.add(now["lastStatus"])
        return now if now["lastStatus"] == "STOPPED" else None

    done = eventually(observe, interval=0.01)
    assert {"PENDING", "RUNNING"} <= seen
    assert done["stopCode"] == "EssentialContainerExited"
    assert done["stoppedReason"] == "Essential container in task exited"
    assert done["containers"][0]["exitCode"] == 0
    assert done["stoppedAt"] >= done["startedAt"]
    listed = ecs.list_tasks(cluster=aws.cluster, family="job", desiredStatus="STOPPED")
    assert listed["taskArns"] == [task["taskArn"]]
    assert ecs.list_tasks(cluster=aws.cluster, family="job")["taskArns"] == []


def test_exit_code_and_reason_from_overrides(aws: Aws) -> None:
    ecs = aws.client("ecs")
    register(ecs, "job")
    overrides = {"containerOverrides": [{"name": "app", "environment": [
        {"name": "SANDBOX_RUN_SECONDS", "value": "0.1"},
        {"name": "SANDBOX_EXIT_CODE", "value": "1"},
        {"name": "SANDBOX_EXIT_REASON", "value": "migration failed"},
    ]}]}
    task = run(aws, ecs, "job", overrides=overrides)
    done = wait_stopped(aws, ecs, task["taskArn"])
    assert done["containers"][0]["exitCode"] == 1
    assert done["containers"][0]["reason"] == "migration failed"


def test_crash_and_fail_to_start_images(aws: Aws) -> None:
    ecs = aws.client("ecs")
    register(ecs, "crasher", image="app:crash")
    register(ecs, "missing", image="app:fail-to-start")
    crashed = wait_stopped(aws, ecs, run(aws, ecs, "crasher")["taskArn"])
    assert crashed["stopCode"] == "EssentialContainerExited"
    assert crashed["containers"][0]["exitCode"] == 1
    assert "startedAt" in crashed

    never = wait_stopped(aws, ecs, run(aws, ecs, "missing")["taskArn"])
    assert never["stopCode"] == "TaskFailedToStart"
    assert never["stoppedReason"].startswith("CannotPullContainerError: ")
    assert "exitCode" not in never["containers"][0]
    assert "startedAt" not in never


def test_unknown_task_is_missing(aws: Aws) -> None:
    ecs = aws.client("ecs")
    answer = ecs.describe_tasks(cluster=aws.cluster, tasks=["0" * 32])
    assert answer["tasks"] == []
    assert answer["failures"][0]["reason"] == "MISSING"
