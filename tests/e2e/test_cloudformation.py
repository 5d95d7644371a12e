"""CloudFormation provisioner steps end to end: the real manager process, a real
delegate, the sandbox's CloudFormation. The product document's own template creates the
cluster and hands back its outputs; a stack that cannot be created fails with its
events; rollback deletes a stack the execution created, or restores the one it updated."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from testkit.sandbox_fixture import Aws
from testkit.stack import DelegateRunner, ManagerApi, log_texts

TEMPLATE = (Path(__file__).resolve().parents[1] / "tasks" / "manifests" / "data"
            / "cloudformation-ecs-cluster.yaml").read_text()



def stack_task(aws: Aws, kind: str, **params: Any) -> dict[str, Any]:
    return {"type": f"cloudformation.{kind}", "selectors": ["ecs"], "timeout": "60s",
            "params": {"region": aws.region, "pollInterval": "0.1s", **params}}


def _clusters(aws: Aws) -> list[str]:
    return [a.rsplit("/", 1)[1] for a in aws.client("ecs").list_clusters()["clusterArns"]]


async def test_the_documents_template_provisions_the_cluster_and_rollback_deletes_it(
        aws: Aws, api: ManagerApi, aws_delegate: DelegateRunner) -> None:
    task_id = await api.submit(stack_task(aws, "create_stack", stackName="ecs-infra",
                                          template=TEMPLATE,
                                          parameters={"ClusterName": "provisioned"}))
    done = await api.wait_finished(task_id, timeout=60)
    texts = log_texts(await api.logs(task_id))
    assert done["status"] == "SUCCESS", (done["error"], texts)
    assert done["output"]["cluster_name"] == "provisioned"
    assert done["output"]["region_name"] == aws.region
    assert done["output"]["rollbackData"] == {"stackName": "ecs-infra", "created": True}
    assert "provisioned" in _clusters(aws)
    assert any("# AWS Event:" in t and "CREATE_COMPLETE" in t for t in texts)

    rollback = await api.submit(stack_task(aws, "rollback_stack", stackName="ecs-infra",
                                           rollbackData=done["output"]["rollbackData"]))
    undone = await api.wait_finished(rollback, timeout=60)
    assert undone["status"] == "SUCCESS", undone["error"]
    assert "provisioned" not in _clusters(aws)
    stacks = aws.client("cloudformation").list_stacks(
        StackStatusFilter=["CREATE_COMPLETE", "UPDATE_COMPLETE"])["StackSummaries"]
    assert [s for s in stacks if s["StackName"] == "ecs-infra"] == []


async def test_a_stack_that_cannot_be_created_fails_with_its_events(
        aws: Aws, api: ManagerApi, aws_delegate: DelegateRunner) -> None:
    broken = TEMPLATE.replace("AWS::ECS::Cluster", "AWS::ECS::Clusterr")
    task_id = await api.submit(stack_task(aws, "create_stack", stackName="broken",
                                          template=broken, parameters={"ClusterName": "x"}))
    done = await api.wait_finished(task_id, timeout=60)
    texts = log_texts(await api.logs(task_id))
    assert done["status"] == "FAILED"
    assert "ROLLBACK_COMPLETE" in done["error"] and "ECSCluster" in done["error"]
    assert any("ECSCluster (AWS::ECS::Clusterr) CREATE_FAILED" in t for t in texts), texts

    # Run again with the template fixed: the dead stack is replaced, as AWS requires.
    again = await api.submit(stack_task(aws, "create_stack", stackName="broken",
                                        template=TEMPLATE, parameters={"ClusterName": "x"}))
    fixed = await api.wait_finished(again, timeout=60)
    assert fixed["status"] == "SUCCESS", fixed["error"]
    assert fixed["output"]["cluster_name"] == "x"


async def test_rollback_restores_the_template_and_parameters_an_update_replaced(
        aws: Aws, api: ManagerApi, aws_delegate: DelegateRunner) -> None:
    first = await api.submit(stack_task(aws, "create_stack", stackName="infra",
                                        template=TEMPLATE, parameters={"ClusterName": "blue"}))
    assert (await api.wait_finished(first, timeout=60))["status"] == "SUCCESS"
    second = await api.submit(stack_task(aws, "create_stack", stackName="infra",
                                         template=TEMPLATE,
                                         parameters={"ClusterName": "green"}))
    updated = await api.wait_finished(second, timeout=60)
    assert updated["status"] == "SUCCESS", updated["error"]
    assert updated["output"]["cluster_name"] == "green"
    data = updated["output"]["rollbackData"]
    assert data["created"] is False
    assert data["parameters"] == [{"ParameterKey": "ClusterName", "ParameterValue": "blue"}]

    rollback = await api.submit(stack_task(aws, "rollback_stack", stackName="infra",
                                           rollbackData=data))
    assert (await api.wait_finished(rollback, timeout=60))["status"] == "SUCCESS"
    stack = aws.client("cloudformation").describe_stacks(StackName="infra")["Stacks"][0]
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stack["Outputs"]}
    assert outputs["cluster_name"] == "blue"
