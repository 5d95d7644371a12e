"""Deregistered (INACTIVE) task definition revisions are refused as ECS refuses them
(issue 16, "Truth and the sandbox"): CreateService, UpdateService and RunTask naming one
fail with ClientException after the grace window; running services keep it."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError

from sandbox import Sandbox
from testkit.sandbox_fixture import TICK, Aws, eventually
from tests.sandbox.ecs_helpers import create_service, describe, register, wait_completed


def refused(call: Any, **kwargs: Any) -> dict[str, Any]:
    with pytest.raises(ClientError) as info:
        call(**kwargs)
    error: dict[str, Any] = info.value.response["Error"]
    return error


def run_task(aws: Aws, ecs: Any, task_definition: str) -> dict[str, Any]:
    answer: dict[str, Any] = ecs.run_task(
        cluster=aws.cluster, taskDefinition=task_definition, launchType="FARGATE",
        networkConfiguration=aws.network_configuration)
    return answer


INACTIVE = {"Code": "ClientException", "Message": "TaskDefinition is inactive"}


def test_create_update_and_run_task_refuse_a_deregistered_revision(aws: Aws) -> None:
    ecs = aws.client("ecs")
    first = register(ecs, "web")
    second = register(ecs, "web", image="nginx:1.28")
    created = create_service(aws, ecs, "web", first, desired=1)
    wait_completed(aws, ecs, "web", created["deployments"][0]["id"])

    gone = ecs.deregister_task_definition(taskDefinition="web:2")["taskDefinition"]
    assert gone["status"] == "INACTIVE" and "deregisteredAt" in gone
    described = ecs.describe_task_definition(taskDefinition=second)["taskDefinition"]
    assert described["status"] == "INACTIVE"

    error = refused(ecs.create_service, cluster=aws.cluster, serviceName="other",
                    taskDefinition=second, desiredCount=1, launchType="FARGATE",
                    networkConfiguration=aws.network_configuration)
    assert {k: error[k] for k in ("Code", "Message")} == INACTIVE
    assert ecs.describe_services(cluster=aws.cluster, services=["other"])["services"] == []

    error = refused(ecs.update_service, cluster=aws.cluster, service="web",
                    taskDefinition="web:2")
    assert {k: error[k] for k in ("Code", "Message")} == INACTIVE
    service = describe(aws, ecs, "web")
    assert service["taskDefinition"] == first
    assert [d["id"] for d in service["deployments"]] == [created["deployments"][0]["id"]]

    error = refused(run_task, aws=aws, ecs=ecs, task_definition=second)
    assert {k: error[k] for k in ("Code", "Message")} == INACTIVE
    # only the service's one task: RunTask started nothing
    assert len(ecs.list_tasks(cluster=aws.cluster, family="web")["taskArns"]) == 1


def test_a_service_already_running_a_deregistered_revision_keeps_running_and_scaling(
        aws: Aws) -> None:
    ecs = aws.client("ecs")
    first = register(ecs, "web")
    created = create_service(aws, ecs, "web", first, desired=1)
    wait_completed(aws, ecs, "web", created["deployments"][0]["id"])
    ecs.deregister_task_definition(taskDefinition=first)

    ecs.update_service(cluster=aws.cluster, service="web", desiredCount=3)
    service = eventually(lambda: (s := describe(aws, ecs, "web"))["runningCount"] == 3 and s)
    assert service["taskDefinition"] == first
    assert len(service["deployments"]) == 1


def test_a_bare_family_means_its_latest_active_revision(aws: Aws) -> None:
    ecs = aws.client("ecs")
    first = register(ecs, "web")
    register(ecs, "web", image="nginx:1.28")
    ecs.deregister_task_definition(taskDefinition="web:2")
    assert ecs.describe_task_definition(taskDefinition="web")["taskDefinition"][
        "taskDefinitionArn"] == first
    created = create_service(aws, ecs, "web", "web", desired=1)
    assert created["taskDefinition"] == first


@pytest.fixture
def grace(sandbox: Sandbox) -> Iterator[float]:
    """A grace window of 60 ticks, put back to the session's (0) afterwards."""
    before = sandbox.inactive_grace
    sandbox.set_inactive_grace(60 * TICK)
    yield 60 * TICK
    sandbox.set_inactive_grace(before)


def test_a_deregistered_revision_works_until_the_grace_window_ends(
        aws: Aws, grace: float) -> None:
    ecs = aws.client("ecs")
    td = register(ecs, "job", environment={"SANDBOX_RUN_SECONDS": "0.1"})
    ecs.deregister_task_definition(taskDefinition=td)
    # Within the window: as on ECS, the deregistration has not taken effect yet.
    assert run_task(aws, ecs, td)["failures"] == []

    def refused_now() -> dict[str, Any] | None:
        try:
            run_task(aws, ecs, td)
        except ClientError as exc:
            error: dict[str, Any] = exc.response["Error"]
            return error
        return None

    error = eventually(refused_now, timeout=grace * 4)
    assert {k: error[k] for k in ("Code", "Message")} == INACTIVE


def test_a_negative_grace_window_is_refused(sandbox: Sandbox) -> None:
    with pytest.raises(ValueError, match="0 or more seconds"):
        sandbox.set_inactive_grace(-1)


def test_revision_numbers_are_never_reused_after_deletion(aws: Aws) -> None:
    ecs = aws.client("ecs")
    for _ in range(2):
        register(ecs, "web")
    for revision in ("web:1", "web:2"):
        ecs.deregister_task_definition(taskDefinition=revision)
    assert ecs.delete_task_definitions(taskDefinitions=["web:1", "web:2"])["failures"] == []
    error = refused(ecs.describe_task_definition, taskDefinition="web:2")
    assert error["Message"] == "Unable to describe task definition."

    assert register(ecs, "web").endswith(":task-definition/web:3")
