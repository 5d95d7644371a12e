"""A dynamically provisioned deployment, end to end (issue 10): the product document's
CloudFormation template creates the cluster, the execution's infrastructure is mapped to
``<+provisioner.region_name>`` / ``<+provisioner.cluster_name>``, the rolling deploy goes
there, and a shell step wires a CloudWatch alarm to the new scaling policy with the
document's two AWS CLI commands. A deployment that fails rolls back the deployment first,
then the provisioner (deleting the stack it created)."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

from testkit.sandbox_fixture import Aws
from testkit.stack import DelegateRunner, ManagerApi

DATA = Path(__file__).resolve().parents[1] / "tasks" / "manifests" / "data"
TEMPLATE = (DATA / "cloudformation-ecs-cluster.yaml").read_text()
# The document's script, its UPPERCASE placeholders filled. Two changes it needs to run
# at all: its `//` comment lines are shell comments here, and put-metric-alarm gets the
# arguments the AWS CLI requires (--metric-name ... --comparison-operator), which the
# document leaves out.
ALARM_SCRIPT = """
# to fetch scaling policy arn, run this

aws application-autoscaling describe-scaling-policies --service-namespace ecs --resource-id service/<+infra.cluster>/<+execution.steps.deploy.output.serviceName> --region <+infra.region>

# to attach cloud watch alarm to scaling policy.

POLICY_ARN=$(aws application-autoscaling describe-scaling-policies --service-namespace ecs --resource-id service/<+infra.cluster>/<+execution.steps.deploy.output.serviceName> --region <+infra.region> --query 'ScalingPolicies[0].PolicyARN' --output text)
aws cloudwatch put-metric-alarm --alarm-name myapp-cpu-high --alarm-actions "$POLICY_ARN" --metric-name CPUUtilization --namespace AWS/ECS --statistic Average --period 60 --evaluation-periods 1 --threshold 80 --comparison-operator GreaterThanThreshold
"""  # noqa: E501


def _service_yaml(aws: Aws, name: str) -> str:
    text = (DATA / "CreateServiceRequest.yaml").read_text()
    text = text.replace("sg-0123456789abcdef0", aws.security_group)
    text = text.replace("subnet-0123456789abcdef0", aws.subnets[0])
    return text.replace("serviceName: myapp", f"serviceName: {name}")


def provisioned_execution(aws: Aws, cluster: str, *, image: str = "nginx:1.27",
                          alarm: bool = True, wait: str = "30s") -> dict[str, Any]:
    deploy = {"id": "deploy", "type": "ecs.rolling_deploy", "params": {
        "pollInterval": "0.1s", "steadyStateTimeout": wait, "manifests": {
            "taskDefinition": {"store": "inline",
                               "content": (DATA / "RegisterTaskDefinitionRequest.yaml")
                               .read_text()},
            "serviceDefinition": {"store": "inline", "content": _service_yaml(aws, "myapp")},
            "scalableTargets": [{"store": "inline",
                                 "content": (DATA / "ScalableTarget.yaml").read_text()}],
            "scalingPolicies": [{"store": "inline",
                                 "content": (DATA / "ScalingPolicy.yaml").read_text()}]}}}
    steps: list[dict[str, Any]] = [deploy]
    if alarm:
        steps.append({"id": "alarm", "type": "shell.script",
                      "params": {"script": ALARM_SCRIPT}})
    return {
        "name": f"provision and deploy {image}", "service": "myapp", "selectors": ["ecs"],
        "artifact": {"image": image},
        "infrastructure": {"region": "<+provisioner.region_name>",
                           "cluster": "<+provisioner.cluster_name>"},
        "provisioner": {
            "steps": [{"id": "provision", "type": "cloudformation.create_stack", "params": {
                "region": aws.region, "stackName": "ecs-infra", "pollInterval": "0.1s",
                "template": TEMPLATE, "parameters": {"ClusterName": cluster}}}],
            "rollbackSteps": [{
                "id": "unprovision", "type": "cloudformation.rollback_stack",
                "rollsBack": "provision", "params": {
                    "region": aws.region, "stackName": "ecs-infra", "pollInterval": "0.1s",
                    "rollbackData": "<+execution.steps.provision.output.rollbackData>"}}]},
        "steps": steps,
        "rollbackSteps": [{"id": "undo", "type": "ecs.rolling_rollback", "rollsBack": "deploy",
                           "params": {"pollInterval": "0.1s", "rollbackData":
                                      "<+execution.steps.deploy.output.rollbackData>"}}],
    }


async def _run(api: ManagerApi, spec: dict[str, Any]) -> dict[str, Any]:
    r = await api.client.post("/api/executions", json=spec)
    assert r.status_code == 201, r.text
    return await api.wait_execution(r.json()["execution_id"])


async def test_provision_then_deploy_to_the_mapped_cluster_then_attach_an_alarm(
        aws: Aws, api: ManagerApi, aws_delegate: DelegateRunner) -> None:
    cluster = f"prov-{uuid.uuid4().hex[:6]}"
    done = await _run(api, provisioned_execution(aws, cluster))
    assert done["status"] == "SUCCESS", json.dumps(done)[:3000]
    assert [r["step_id"] for r in done["runs"]] == ["provision", "deploy", "alarm"]
    assert done["infrastructure"] == {"region": aws.region, "cluster": cluster,
                                      "credentials": None}
    live = aws.client("ecs").describe_services(cluster=cluster, services=["myapp"])
    assert live["services"][0]["status"] == "ACTIVE"
    policy = aws.client("application-autoscaling").describe_scaling_policies(
        ServiceNamespace="ecs", ResourceId=f"service/{cluster}/myapp")["ScalingPolicies"][0]
    alarms = aws.client("cloudwatch").describe_alarms(AlarmNames=["myapp-cpu-high"])
    assert alarms["MetricAlarms"][0]["AlarmActions"] == [policy["PolicyARN"]]


async def test_a_failed_deployment_rolls_back_the_deployment_then_the_provisioner(
        aws: Aws, api: ManagerApi, aws_delegate: DelegateRunner) -> None:
    cluster = f"prov-{uuid.uuid4().hex[:6]}"
    # An image the sandbox crashes: the document's service has no circuit breaker, so the
    # deploy never reaches steady state and times out; then both sections are undone.
    done = await _run(api, provisioned_execution(aws, cluster, image="sandbox/crash:1",
                                                 alarm=False, wait="3s"))
    order = [(r["step_id"], r["status"]) for r in done["runs"]]
    assert order == [("provision", "SUCCESS"), ("deploy", "TIMED_OUT"), ("undo", "SUCCESS"),
                     ("unprovision", "SUCCESS")], json.dumps(done)[:3000]
    assert done["status"] == "FAILED"
    stacks = aws.client("cloudformation").describe_stacks()["Stacks"]
    assert [s for s in stacks if s["StackName"] == "ecs-infra"] == []


async def test_an_output_no_provisioner_step_produced_fails_the_step_naming_it(
        aws: Aws, api: ManagerApi, aws_delegate: DelegateRunner) -> None:
    spec = provisioned_execution(aws, f"prov-{uuid.uuid4().hex[:6]}", alarm=False)
    spec["infrastructure"]["cluster"] = "<+provisioner.cluster_nmae>"
    done = await _run(api, spec)
    assert done["status"] == "FAILED"
    deploy = next(r for r in done["runs"] if r["step_id"] == "deploy")
    assert "no provisioner step produced output 'cluster_nmae'" in deploy["error"]
    assert "cluster_name" in deploy["error"]


async def test_infrastructure_naming_a_provisioner_without_one_is_refused(
        aws: Aws, api: ManagerApi) -> None:
    spec = provisioned_execution(aws, "x", alarm=False)
    del spec["provisioner"]
    r = await api.client.post("/api/executions", json=spec)
    assert r.status_code == 422
    assert "no provisioner section" in r.text


async def test_a_shell_provisioner_maps_its_json_outputs_to_the_infrastructure(
        aws: Aws, api: ManagerApi, aws_delegate: DelegateRunner) -> None:
    provision = ("echo provisioning\n"
                 f"printf '{{\"cluster_name\": \"{aws.cluster}\", \"region_name\": "
                 f"\"{aws.region}\"}}' > \"$PROVISIONER_OUTPUT_PATH\"\n")
    spec = {
        "name": "shell provisioned", "service": "shell-svc", "selectors": ["ecs"],
        "infrastructure": {"region": "<+provisioner.region_name>",
                           "cluster": "<+provisioner.cluster_name>"},
        "provisioner": {"steps": [{"id": "provision", "type": "shell.provision",
                                   "params": {"script": provision}}]},
        "steps": [{"id": "where", "type": "shell.script", "params": {
            "script": 'WHERE="$ECS_CLUSTER in $AWS_REGION via <+provisioner.cluster_name>"',
            "outputVariables": ["WHERE"]}}],
    }
    done = await _run(api, spec)
    assert done["status"] == "SUCCESS", json.dumps(done)[:3000]
    runs = {r["step_id"]: r for r in done["runs"]}
    assert runs["provision"]["output"]["cluster_name"] == aws.cluster
    assert runs["where"]["output"]["WHERE"] == (
        f"{aws.cluster} in {aws.region} via {aws.cluster}")


async def test_a_shell_provisioner_that_writes_no_json_object_fails_saying_so(
        aws: Aws, api: ManagerApi, aws_delegate: DelegateRunner) -> None:
    r = await api.client.post("/api/tasks", json={
        "type": "shell.provision", "selectors": ["ecs"],
        "params": {"script": "echo '[1, 2]' > \"$PROVISIONER_OUTPUT_PATH\""}})
    assert r.status_code == 201, r.text
    done = await api.wait_finished(r.json()["task_id"], timeout=30)
    assert done["status"] == "FAILED"
    assert "holds list, not a JSON object of outputs" in done["error"]
