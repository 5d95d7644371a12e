"""ECS services in the sandbox behave like ECS services."""

from __future__ import annotations

import re
import uuid

import pytest
from botocore.exceptions import ClientError

from testkit.sandbox_fixture import Aws, eventually
from tests.sandbox.ecs_helpers import (
    create_service,
    describe,
    messages,
    register,
    tasks,
    wait_completed,
)

DEPLOYMENT_ID = re.compile(r"^ecs-svc/\d{19}$")
BREAKER = {"deploymentCircuitBreaker": {"enable": True, "rollback": True}}
NO_ROLLBACK = {"deploymentCircuitBreaker": {"enable": True, "rollback": False}}


def test_create_completes_with_events_and_tasks(aws: Aws) -> None:
    ecs = aws.client("ecs")
    td = register(ecs, "web")
    created = create_service(aws, ecs, "web", "web", desired=2, healthCheckGracePeriodSeconds=30,
                             deploymentConfiguration=BREAKER)

    [first] = created["deployments"]
    assert DEPLOYMENT_ID.match(first["id"])
    assert first["status"] == "PRIMARY" and first["rolloutState"] == "IN_PROGRESS"
    assert first["rolloutStateReason"] == f"ECS deployment {first['id']} in progress."
    assert created["taskDefinition"] == td
    assert created["healthCheckGracePeriodSeconds"] == 30
    assert created["deploymentConfiguration"]["deploymentCircuitBreaker"] == {
        "enable": True, "rollback": True}
    assert created["deploymentConfiguration"]["maximumPercent"] == 200

    service = wait_completed(aws, ecs, "web", first["id"])
    [done] = service["deployments"]
    assert done["rolloutStateReason"] == f"ECS deployment {first['id']} completed."
    assert (done["runningCount"], done["pendingCount"], done["desiredCount"]) == (2, 0, 2)
    log = messages(service)
    assert re.fullmatch(r"\(service web\) has started 2 tasks: \(task [0-9a-f]{32}\) "
                        r"\(task [0-9a-f]{32}\)\.", log[0])
    assert log[-2:] == [
        f"(service web) (deployment {first['id']}) deployment completed.",
        "(service web) has reached a steady state.",
    ]
    for event in service["events"]:
        assert uuid.UUID(event["id"])

    running = tasks(aws, ecs, serviceName="web")
    assert len(running) == 2
    for task in running:
        assert task["group"] == "service:web"
        assert task["startedBy"] == first["id"]
        assert task["lastStatus"] == "RUNNING"
        assert task["taskDefinitionArn"] == td
        assert task["startedAt"] >= task["createdAt"]


def test_new_task_definition_rolls_tasks(aws: Aws) -> None:
    ecs = aws.client("ecs")
    register(ecs, "web")
    first = create_service(aws, ecs, "web", "web:1")["deployments"][0]["id"]
    wait_completed(aws, ecs, "web", first)
    old_tasks = {t["taskArn"] for t in tasks(aws, ecs, serviceName="web")}

    td2 = register(ecs, "web", image="nginx:1.28")
    updated = ecs.update_service(cluster=aws.cluster, service="web", taskDefinition="web:2")
    deployments = updated["service"]["deployments"]
    assert [d["status"] for d in deployments] == ["PRIMARY", "ACTIVE"]
    second = deployments[0]["id"]
    assert second != first and DEPLOYMENT_ID.match(second)
    assert deployments[0]["taskDefinition"] == td2
    assert deployments[1]["id"] == first
    assert deployments[1]["rolloutState"] == "COMPLETED"
    assert updated["service"]["taskDefinition"] == td2

    service = wait_completed(aws, ecs, "web", second)
    log = messages(service)
    assert any(m.startswith("(service web) has stopped 2 running tasks: ") for m in log) or (
        sum(m.startswith("(service web) has stopped 1 running tasks: ") for m in log) == 2
    )
    assert log[-2:] == [
        f"(service web) (deployment {second}) deployment completed.",
        "(service web) has reached a steady state.",
    ]
    stopped = tasks(aws, ecs, status="STOPPED", serviceName="web")
    assert {t["taskArn"] for t in stopped} == old_tasks
    for task in stopped:
        assert task["lastStatus"] == "STOPPED"
        assert task["stopCode"] == "ServiceSchedulerInitiated"
        assert task["stoppedReason"] == f"Scaling activity initiated by (deployment {first})"
    assert {t["startedBy"] for t in tasks(aws, ecs, serviceName="web")} == {second}


def test_force_new_deployment_starts_a_deployment(aws: Aws) -> None:
    ecs = aws.client("ecs")
    register(ecs, "web")
    first = create_service(aws, ecs, "web", "web", desired=1)["deployments"][0]["id"]
    wait_completed(aws, ecs, "web", first)
    updated = ecs.update_service(cluster=aws.cluster, service="web", forceNewDeployment=True)
    second = updated["service"]["deployments"][0]["id"]
    assert second != first
    wait_completed(aws, ecs, "web", second)


def test_desired_count_change_scales_without_a_deployment(aws: Aws) -> None:
    ecs = aws.client("ecs")
    register(ecs, "web")
    first = create_service(aws, ecs, "web", "web", desired=1)["deployments"][0]["id"]
    wait_completed(aws, ecs, "web", first)

    updated = ecs.update_service(cluster=aws.cluster, service="web", desiredCount=3)
    [deployment] = updated["service"]["deployments"]
    assert deployment["id"] == first and deployment["desiredCount"] == 3
    assert updated["service"]["runningCount"] == 1  # not instantly, as moto alone would say

    def scaled() -> dict[str, object] | None:
        service = describe(aws, ecs, "web")
        return service if service["runningCount"] == 3 and len(
            tasks(aws, ecs, serviceName="web")) == 3 else None

    service = eventually(scaled)
    assert [d["id"] for d in service["deployments"]] == [first]
    eventually(lambda: messages(describe(aws, ecs, "web"))[-1]
               == "(service web) has reached a steady state.")

    ecs.update_service(cluster=aws.cluster, service="web", desiredCount=1)
    eventually(lambda: len(tasks(aws, ecs, serviceName="web")) == 1
               and describe(aws, ecs, "web")["runningCount"] == 1)
    log = messages(describe(aws, ecs, "web"))
    assert any(m.startswith("(service web) has stopped 2 running tasks: ") for m in log)


def test_circuit_breaker_rolls_back_to_the_completed_deployment(aws: Aws) -> None:
    ecs = aws.client("ecs")
    td1 = register(ecs, "web")
    first = create_service(aws, ecs, "web", "web", desired=2,
                           deploymentConfiguration=BREAKER)["deployments"][0]["id"]
    wait_completed(aws, ecs, "web", first)

    register(ecs, "web", image="registry.example/web:fail-to-start")
    second = ecs.update_service(cluster=aws.cluster, service="web", taskDefinition="web:2")[
        "service"]["deployments"][0]["id"]

    def rolled_back() -> dict[str, object] | None:
        service = describe(aws, ecs, "web")
        primary = service["deployments"][0]
        return service if primary["id"] == first and len(service["deployments"]) == 2 else None

    during = eventually(rolled_back)
    primary, failed = during["deployments"]
    assert primary["rolloutState"] == "IN_PROGRESS"
    assert primary["rolloutStateReason"] == (
        f"ECS deployment circuit breaker: rolling back to deploymentId {first}.")
    assert primary["taskDefinition"] == td1
    assert failed["id"] == second and failed["status"] == "ACTIVE"
    assert failed["rolloutState"] == "FAILED"
    assert failed["rolloutStateReason"] == "ECS deployment circuit breaker: tasks failed to start."
    assert failed["failedTasks"] >= 3

    service = wait_completed(aws, ecs, "web", first)
    assert service["deployments"][0]["rolloutStateReason"] == f"ECS deployment {first} completed."
    assert service["taskDefinition"] == td1
    log = messages(service)
    failed_at = log.index(f"(service web) (deployment {second}) deployment failed: "
                          "tasks failed to start.")
    assert log[failed_at + 1] == f"(service web) rolling back to deployment {first}."
    assert log[-2:] == [f"(service web) (deployment {first}) deployment completed.",
                        "(service web) has reached a steady state."]

    stopped = tasks(aws, ecs, status="STOPPED", startedBy=second)
    assert stopped
    for task in stopped:
        assert task["stopCode"] == "TaskFailedToStart"
        assert task["stoppedReason"].startswith("CannotPullContainerError: ")
        assert "exitCode" not in task["containers"][0]
    # the tasks of the completed deployment kept serving throughout
    assert {t["startedBy"] for t in tasks(aws, ecs, serviceName="web")} == {first}


def test_circuit_breaker_without_rollback_keeps_the_failed_primary(aws: Aws) -> None:
    ecs = aws.client("ecs")
    register(ecs, "web")
    first = create_service(aws, ecs, "web", "web", desired=1,
                           deploymentConfiguration=NO_ROLLBACK)["deployments"][0]["id"]
    wait_completed(aws, ecs, "web", first)
    register(ecs, "web", image="web:crash")
    second = ecs.update_service(cluster=aws.cluster, service="web", taskDefinition="web:2")[
        "service"]["deployments"][0]["id"]

    def failed() -> dict[str, object] | None:
        service = describe(aws, ecs, "web")
        return service if service["deployments"][0]["rolloutState"] == "FAILED" else None

    service = eventually(failed)
    primary, old = service["deployments"]
    assert (primary["id"], primary["status"]) == (second, "PRIMARY")
    assert primary["rolloutStateReason"] == "ECS deployment circuit breaker: tasks failed to start."
    assert (old["id"], old["status"], old["runningCount"]) == (first, "ACTIVE", 1)
    assert messages(service)[-1] == (
        f"(service web) (deployment {second}) deployment failed: tasks failed to start.")
    # FAILED launches nothing more: every task of the failed deployment ends stopped
    eventually(lambda: not tasks(aws, ecs, startedBy=second))
    settled = describe(aws, ecs, "web")
    assert [d["id"] for d in settled["deployments"]] == [second, first]
    crashed = tasks(aws, ecs, status="STOPPED", startedBy=second)
    for task in crashed:
        assert task["stopCode"] == "EssentialContainerExited"
        assert task["stoppedReason"] == "Essential container in task exited"
        assert task["containers"][0]["exitCode"] == 1


def test_delete_drains_then_goes_inactive(aws: Aws) -> None:
    ecs = aws.client("ecs")
    register(ecs, "web")
    first = create_service(aws, ecs, "web", "web", desired=2)["deployments"][0]["id"]
    wait_completed(aws, ecs, "web", first)

    with pytest.raises(ClientError, match="scaled above 0"):
        ecs.delete_service(cluster=aws.cluster, service="web")
    deleted = ecs.delete_service(cluster=aws.cluster, service="web", force=True)["service"]
    assert deleted["status"] == "DRAINING"
    assert ecs.list_services(cluster=aws.cluster)["serviceArns"] == []
    with pytest.raises(ClientError) as info:
        ecs.update_service(cluster=aws.cluster, service="web", desiredCount=1)
    assert info.value.response["Error"]["Code"] == "ServiceNotActiveException"
    with pytest.raises(ClientError, match="still Draining"):
        create_service(aws, ecs, "web", "web")

    eventually(lambda: describe(aws, ecs, "web")["status"] == "INACTIVE")
    assert tasks(aws, ecs, serviceName="web") == []
    assert len(tasks(aws, ecs, status="STOPPED", serviceName="web")) == 2

    again = create_service(aws, ecs, "web", "web", desired=1)
    assert again["status"] == "ACTIVE"
    wait_completed(aws, ecs, "web", again["deployments"][0]["id"])


def test_duplicate_create_is_refused(aws: Aws) -> None:
    ecs = aws.client("ecs")
    register(ecs, "web")
    create_service(aws, ecs, "web", "web", desired=1)
    with pytest.raises(ClientError) as info:
        create_service(aws, ecs, "web", "web", desired=1)
    assert info.value.response["Error"]["Code"] == "InvalidParameterException"
    assert info.value.response["Error"]["Message"] == "Creation of service was not idempotent."


def test_describe_services_takes_at_most_ten(aws: Aws) -> None:
    ecs = aws.client("ecs")
    register(ecs, "web")
    names = [f"svc-{i:02d}" for i in range(11)]
    for name in names:
        create_service(aws, ecs, name, "web", desired=0)
    with pytest.raises(ClientError, match="at most 10 items"):
        ecs.describe_services(cluster=aws.cluster, services=names)
    answer = ecs.describe_services(cluster=aws.cluster, services=[*names[:9], "missing"])
    assert len(answer["services"]) == 9
    assert answer["failures"][0]["reason"] == "MISSING"

    pages = ecs.get_paginator("list_services").paginate(cluster=aws.cluster)
    listed = [arn for page in pages for arn in page["serviceArns"]]
    assert sorted(arn.split("/")[-1] for arn in listed) == names


def test_load_balanced_service_registers_targets(aws: Aws) -> None:
    ecs, elbv2 = aws.client("ecs"), aws.client("elbv2")
    vpc = aws.client("ec2").describe_subnets(SubnetIds=aws.subnets[:1])["Subnets"][0]["VpcId"]
    tg = elbv2.create_target_group(Name="web", Protocol="HTTP", Port=80, VpcId=vpc,
                                   TargetType="ip")["TargetGroups"][0]["TargetGroupArn"]
    register(ecs, "web", portMappings=[{"containerPort": 80}])
    first = create_service(
        aws, ecs, "web", "web", desired=1,
        loadBalancers=[{"targetGroupArn": tg, "containerName": "app", "containerPort": 80}],
    )["deployments"][0]["id"]
    log = messages(wait_completed(aws, ecs, "web", first))
    assert f"(service web) registered 1 targets in (target-group {tg})" in log
    health = elbv2.describe_target_health(TargetGroupArn=tg)["TargetHealthDescriptions"]
    assert len(health) == 1 and health[0]["Target"]["Port"] == 80

    second = ecs.update_service(cluster=aws.cluster, service="web", forceNewDeployment=True)[
        "service"]["deployments"][0]["id"]
    log = messages(wait_completed(aws, ecs, "web", second))
    assert f"(service web) deregistered 1 targets in (target-group {tg})" in log
    assert len(elbv2.describe_target_health(TargetGroupArn=tg)["TargetHealthDescriptions"]) == 1


def test_user_stopped_task_is_replaced(aws: Aws) -> None:
    ecs = aws.client("ecs")
    register(ecs, "web")
    first = create_service(aws, ecs, "web", "web", desired=1)["deployments"][0]["id"]
    wait_completed(aws, ecs, "web", first)
    [task] = tasks(aws, ecs, serviceName="web")
    stopped = ecs.stop_task(cluster=aws.cluster, task=task["taskArn"], reason="testing")["task"]
    assert stopped["desiredStatus"] == "STOPPED"
    replaced = eventually(lambda: [t for t in tasks(aws, ecs, serviceName="web")
                                   if t["lastStatus"] == "RUNNING"])
    assert replaced[0]["taskArn"] != task["taskArn"]
    [old] = ecs.describe_tasks(cluster=aws.cluster, tasks=[task["taskArn"]])["tasks"]
    assert (old["stopCode"], old["stoppedReason"]) == ("UserInitiated", "testing")
