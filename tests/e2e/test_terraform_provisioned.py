"""The issue's "done when" for Terraform: plan → apply of that plan → its outputs mapped to
the infrastructure (``<+provisioner.NAME>``) → rolling deploy on the sandbox → a forced
failure → the deployment rolled back, then ``terraform.rollback`` (on another delegate:
the state is the manager's) applies the earlier configuration again and its outputs are
the earlier ones."""

from __future__ import annotations

import json
import shutil
from typing import Any

import pytest

from testkit.sandbox_fixture import Aws
from testkit.stack import DelegateRunner, ManagerApi, ManagerProcess, log_texts
from tests.e2e.test_provisioned_execution import DATA, _service_yaml

pytestmark = pytest.mark.skipif(shutil.which("terraform") is None,
                                reason="terraform is not on PATH")

INFRA_TF = """
variable "cluster" { type = string }
variable "region" { type = string }
variable "release" { type = string }
resource "terraform_data" "infra" { input = "${var.cluster}/${var.release}" }
output "cluster_name" { value = var.cluster }
output "region_name" { value = var.region }
output "release" { value = split("/", terraform_data.infra.output)[1] }
"""


def _configuration(aws: Aws, release: str) -> dict[str, Any]:
    return {"provisionerIdentifier": "ecs-infra",
            "configuration": {"store": "inline", "files": {"main.tf": INFRA_TF}},
            "variables": {"cluster": aws.cluster, "region": aws.region, "release": release}}


def _execution(aws: Aws) -> dict[str, Any]:
    deploy = {"id": "deploy", "type": "ecs.rolling_deploy", "params": {
        "pollInterval": "0.1s", "steadyStateTimeout": "3s", "manifests": {
            "taskDefinition": {"store": "inline", "content":
                               (DATA / "RegisterTaskDefinitionRequest.yaml").read_text()},
            "serviceDefinition": {"store": "inline",
                                  "content": _service_yaml(aws, "tf-app")}}}}
    return {
        "name": "terraform provisioned", "service": "tf-app", "selectors": ["ecs"],
        # An image the sandbox crashes: the deploy never reaches steady state.
        "artifact": {"image": "sandbox/crash:1"},
        "infrastructure": {"region": "<+provisioner.region_name>",
                           "cluster": "<+provisioner.cluster_name>"},
        "provisioner": {
            "steps": [
                {"id": "plan", "type": "terraform.plan", "params": _configuration(aws, "v2")},
                {"id": "apply", "type": "terraform.apply",
                 "params": {"provisionerIdentifier": "ecs-infra", "planStep": "plan"}}],
            "rollbackSteps": [{
                "id": "unapply", "type": "terraform.rollback", "rollsBack": "apply",
                "selectors": ["tf-elsewhere"],
                "params": {"provisionerIdentifier": "ecs-infra",
                           "rollbackData": "<+execution.steps.apply.output.rollbackData>"}}]},
        "steps": [deploy],
        "rollbackSteps": [{"id": "undo", "type": "ecs.rolling_rollback", "rollsBack": "deploy",
                           "params": {"pollInterval": "0.1s", "rollbackData":
                                      "<+execution.steps.deploy.output.rollbackData>"}}],
    }


async def test_terraform_outputs_drive_the_deploy_and_rollback_restores_the_earlier_ones(
        aws: Aws, api: ManagerApi, manager: ManagerProcess, token: str,
        aws_delegate: DelegateRunner) -> None:
    first = await api.submit({"type": "terraform.apply", "selectors": ["ecs"],
                              "timeout": "120s", "params": _configuration(aws, "v1")})
    earlier = await api.wait_finished(first, timeout=120)
    assert earlier["status"] == "SUCCESS", earlier["error"]
    assert earlier["output"]["release"] == "v1"

    async with DelegateRunner(manager.url, token, name="elsewhere",
                              tags=("tf-elsewhere",)) as elsewhere:
        await elsewhere.registered()
        r = await api.client.post("/api/executions", json=_execution(aws))
        assert r.status_code == 201, r.text
        done = await api.wait_execution(r.json()["execution_id"], timeout=120)

    order = [(run["step_id"], run["status"]) for run in done["runs"]]
    assert order == [("plan", "SUCCESS"), ("apply", "SUCCESS"), ("deploy", "TIMED_OUT"),
                     ("undo", "SUCCESS"), ("unapply", "SUCCESS")], json.dumps(done)[:3000]
    runs = {run["step_id"]: run for run in done["runs"]}
    assert runs["apply"]["output"]["release"] == "v2"
    assert done["infrastructure"]["cluster"] == aws.cluster
    assert done["infrastructure"]["region"] == aws.region
    service = aws.client("ecs").describe_services(cluster=aws.cluster, services=["tf-app"])
    assert service["services"] == [] or service["services"][0]["status"] != "ACTIVE"
    assert runs["unapply"]["output"]["release"] == "v1"
    assert runs["unapply"]["output"]["cluster_name"] == aws.cluster
    texts = log_texts(await api.logs(runs["unapply"]["task_id"]))
    assert f"Applying again the configuration and variables of task {first}'s apply, the " \
        "last successful one before this execution's" in texts, texts
    assert any("terraform_data.infra will be updated in-place" in t for t in texts), texts
