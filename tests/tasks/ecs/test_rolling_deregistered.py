"""ecs.rolling_rollback when someone deregistered (or deleted) the task definition revision
it restores (issue 16, "Truth and the sandbox"): ECS refuses UpdateService naming an
INACTIVE revision, so the rollback registers the saved definition again and says so."""

from __future__ import annotations

from typing import Any

import pytest

from agent.context import TaskFailed
from testkit.sandbox_fixture import Aws

from .test_rolling import (  # noqa: F401  (point_at_sandbox: autouse fixture)
    BAD,
    GOOD,
    deploy,
    failing_deploy,
    live,
    point_at_sandbox,
    rollback,
)

NO_ROLLBACK = {"enable": True, "rollback": False}


def revisions(aws: Aws) -> list[str]:
    arns: list[str] = aws.client("ecs").list_task_definitions(
        familyPrefix="myapp-td", status="ACTIVE")["taskDefinitionArns"]
    return [arn.rsplit("/", 1)[-1] for arn in arns]


def deregister(aws: Aws, arn: str, *, delete: bool = False) -> None:
    ecs = aws.client("ecs")
    ecs.deregister_task_definition(taskDefinition=arn)
    if delete:
        answer = ecs.delete_task_definitions(taskDefinitions=[arn])
        assert answer["failures"] == []


async def failed_update(aws: Aws) -> tuple[dict[str, Any], dict[str, Any]]:
    """A first deploy (myapp-td:1), then an update (myapp-td:2) whose tasks fail to start:
    (the first deploy's output, the failed one's rollback data)."""
    first, _ = await deploy(aws, desired=2, scaling=True)
    failed, _ = await failing_deploy(aws, image=BAD, desired=2, scaling=True,
                                     breaker=NO_ROLLBACK)
    return first, failed.output["rollbackData"]


async def test_a_deleted_revision_is_registered_again_from_the_rollback_data(
        aws: Aws) -> None:
    first, data = await failed_update(aws)
    assert data["version"] == 3
    saved = data["taskDefinition"]
    assert saved["family"] == "myapp-td"
    assert saved["containerDefinitions"][0]["image"] == GOOD
    assert not {"revision", "status", "taskDefinitionArn", "registeredAt"} & set(saved)
    deregister(aws, first["taskDefinitionArn"], delete=True)

    done, rec = await rollback(aws, data)
    assert done["rolledBack"] is True
    assert "Revision myapp-td:1 was deregistered; registered it again as myapp-td:3" \
        in rec.lines()
    svc = live(aws)
    assert svc["taskDefinition"].endswith(":task-definition/myapp-td:3")
    assert done["taskDefinitionArn"] == svc["taskDefinition"]
    assert (svc["desiredCount"], svc["runningCount"]) == (2, 2)
    again = aws.client("ecs").describe_task_definition(
        taskDefinition=svc["taskDefinition"])["taskDefinition"]
    assert again["containerDefinitions"][0]["image"] == GOOD
    assert f" Rolled back Service myapp to {svc['taskDefinition']}." in rec.lines()


async def test_version_2_rollback_data_registers_the_revision_from_what_ecs_describes(
        aws: Aws) -> None:
    first, data = await failed_update(aws)
    old = {k: v for k, v in data.items() if k != "taskDefinition"} | {"version": 2}
    deregister(aws, first["taskDefinitionArn"])

    done, rec = await rollback(aws, old)
    assert done["rolledBack"] is True
    assert "Revision myapp-td:1 was deregistered; registered it again as myapp-td:3" \
        in rec.lines()
    assert live(aws)["taskDefinition"].endswith("myapp-td:3")
    assert revisions(aws) == ["myapp-td:2", "myapp-td:3"]


async def test_version_2_rollback_data_of_a_deleted_revision_is_refused_before_any_change(
        aws: Aws) -> None:
    first, data = await failed_update(aws)
    old = {k: v for k, v in data.items() if k != "taskDefinition"} | {"version": 2}
    deregister(aws, first["taskDefinitionArn"], delete=True)
    before = live(aws)

    with pytest.raises(TaskFailed) as failed:
        await rollback(aws, old)
    assert str(failed.value) == (
        "Revision myapp-td:1 is MISSING and the rollback data does not hold its definition "
        "(it was saved by an older delegate), so it cannot be registered again. Deploy the "
        "version you want instead.")
    after = live(aws)
    assert (after["taskDefinition"], after["desiredCount"]) == (
        before["taskDefinition"], before["desiredCount"])


async def test_a_deregistered_revision_the_service_already_runs_again_is_kept(
        aws: Aws) -> None:
    """ECS's circuit breaker rolled back to it: ECS keeps running a deregistered revision
    but refuses it by name, so the rollback names no task definition at all."""
    first, _ = await deploy(aws)
    failed, _ = await failing_deploy(aws, image=BAD,
                                     breaker={"enable": True, "rollback": True})
    deregister(aws, first["taskDefinitionArn"])

    done, rec = await rollback(aws, failed.output["rollbackData"])
    assert done["rolledBack"] is True
    assert ("Revision myapp-td:1 was deregistered, but the service's PRIMARY deployment "
            "still runs it (ECS keeps it running): keeping it") in rec.lines()
    assert live(aws)["taskDefinition"] == first["taskDefinitionArn"]
    assert revisions(aws) == ["myapp-td:2"]  # nothing registered again


async def test_a_running_revision_that_cannot_be_read_is_warned_about_and_the_deploy_goes_on(
        aws: Aws) -> None:
    first, _ = await deploy(aws)
    deregister(aws, first["taskDefinitionArn"], delete=True)  # the service still runs it

    second, rec = await deploy(aws, image="public.ecr.aws/nginx/nginx:1.28")
    assert second["rollbackData"]["taskDefinition"] is None
    assert ("Could not read task definition myapp-td:1 (ClientException: Unable to describe "
            "task definition.): if it is deregistered before a rollback, the rollback "
            "cannot register it again") in rec.lines("Prepare Rollback Data")
    assert rec.lines("Deploy")[-1] == " Deployment Successful."

    with pytest.raises(TaskFailed) as failed:
        await rollback(aws, second["rollbackData"])
    assert str(failed.value).startswith("Revision myapp-td:1 is MISSING and the rollback data "
                                        "does not hold its definition")
    assert live(aws)["taskDefinition"] == second["taskDefinitionArn"]
