"""One service, two environments (issue 11): the same stored service deployed to
pre-production and production gets different effective manifests and variables from
each environment's override, `render` explains each, and both deployments succeed on
the sandbox — the real manager process, a real delegate, the ECS simulator."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import yaml

from testkit.sandbox_fixture import Aws
from testkit.stack import DelegateRunner, ManagerApi

DATA = Path(__file__).resolve().parents[1] / "tasks" / "manifests" / "data"


def task_definition(cpu: str = "256", memory: str = "512") -> dict[str, Any]:
    td = yaml.safe_load((DATA / "RegisterTaskDefinitionRequest.yaml").read_text())
    td.update(cpu=cpu, memory=memory, family="myapp")
    td["containerDefinitions"][0]["environment"] = [
        {"name": "LOG_LEVEL", "value": "<+serviceVariables.LOG_LEVEL>"},
        {"name": "ENV_NAME", "value": "<+env.name>"}]
    return td


def service_definition(aws: Aws, desired: int) -> dict[str, Any]:
    text = (DATA / "CreateServiceRequest.yaml").read_text()
    text = text.replace("sg-0123456789abcdef0", aws.security_group)
    text = text.replace("subnet-0123456789abcdef0", aws.subnets[0])
    sd = yaml.safe_load(text)
    sd["desiredCount"] = desired
    return sd


def inline(content: dict[str, Any]) -> dict[str, Any]:
    return {"store": "inline", "content": content}


def definitions(aws: Aws, prod_cluster: str) -> list[dict[str, Any]]:
    return [
        {"kind": "Service", "name": "myapp", "spec": {
            "manifests": {"taskDefinition": inline(task_definition()),
                          "serviceDefinition": inline(service_definition(aws, 1))},
            "variables": {"LOG_LEVEL": "debug"}}},
        {"kind": "Environment", "name": "pre-production", "spec": {"type": "PreProduction"}},
        {"kind": "Environment", "name": "production",
         "spec": {"type": "Production", "variables": {"LOG_LEVEL": "info"}}},
        {"kind": "Infrastructure", "name": "preprod-cluster", "spec": {
            "environment": "pre-production", "region": aws.region, "cluster": aws.cluster}},
        {"kind": "Infrastructure", "name": "prod-cluster", "spec": {
            "environment": "production", "region": aws.region, "cluster": prod_cluster}},
        {"kind": "Override", "name": "production-myapp", "spec": {
            "service": "myapp", "environment": "production",
            "manifests": {"serviceDefinition": inline(service_definition(aws, 2))},
            "variables": {"LOG_LEVEL": "warn"}}},
        {"kind": "Override", "name": "prod-cluster-myapp", "spec": {
            "service": "myapp", "infrastructure": "prod-cluster",
            "manifests": {"taskDefinition": inline(task_definition("512", "1024"))}}},
    ]


def by_reference(environment: str) -> dict[str, Any]:
    return {
        "name": f"deploy myapp to {environment}", "service": "myapp",
        "environment": environment, "selectors": ["ecs"],
        "artifact": {"image": "nginx:1.27"},
        "steps": [{"id": "deploy", "type": "ecs.rolling_deploy",
                   "params": {"pollInterval": "0.1s", "steadyStateTimeout": "30s"}}],
        "rollbackSteps": [{"id": "undo", "type": "ecs.rolling_rollback", "rollsBack": "deploy",
                           "params": {"pollInterval": "0.1s", "rollbackData":
                                      "<+execution.steps.deploy.output.rollbackData>"}}],
    }


async def test_one_service_two_environments_different_manifests_both_deploy(
        aws: Aws, api: ManagerApi, aws_delegate: DelegateRunner) -> None:
    prod_cluster = f"prod-{uuid.uuid4().hex[:6]}"
    aws.client("ecs").create_cluster(clusterName=prod_cluster)
    applied = await api.client.post("/api/definitions/apply",
                                    json={"documents": definitions(aws, prod_cluster)})
    assert applied.status_code == 200, applied.text

    rendered = {}
    for env in ("pre-production", "production"):
        r = await api.client.post("/api/executions/render", json=by_reference(env))
        assert r.status_code == 200, r.text
        rendered[env] = {k: v["from"] for k, v in r.json()["manifests"].items()}
    assert rendered == {
        "pre-production": {"taskDefinition": "service myapp revision 1",
                           "serviceDefinition": "service myapp revision 1"},
        "production": {
            "taskDefinition": "override prod-cluster-myapp (infrastructure prod-cluster) "
                              "revision 1",
            "serviceDefinition": "override production-myapp (environment production) "
                                 "revision 1"}}

    done = {}
    for env in ("pre-production", "production"):
        r = await api.client.post("/api/executions", json=by_reference(env))
        assert r.status_code == 201, r.text
        done[env] = await api.wait_execution(r.json()["execution_id"])
        assert done[env]["status"] == "SUCCESS", json.dumps(done[env])[:3000]

    ecs = aws.client("ecs")
    seen = {}
    for env, cluster in (("pre-production", aws.cluster), ("production", prod_cluster)):
        svc = ecs.describe_services(cluster=cluster, services=["myapp"])["services"][0]
        td = ecs.describe_task_definition(taskDefinition=svc["taskDefinition"])[
            "taskDefinition"]
        container_env = {e["name"]: e["value"]
                         for e in td["containerDefinitions"][0]["environment"]}
        seen[env] = (svc["desiredCount"], td["cpu"], td["memory"], container_env)
    assert seen == {
        "pre-production": (1, "256", "512", {"LOG_LEVEL": "debug",
                                             "ENV_NAME": "pre-production"}),
        "production": (2, "512", "1024", {"LOG_LEVEL": "warn", "ENV_NAME": "production"})}
    inputs = (await api.client.get(
        f"/api/executions/{done['production']['execution_id']}/inputs")).json()
    assert inputs["variables"]["LOG_LEVEL"] == {
        "value": "warn",
        "from": "override production-myapp (environment production) revision 1"}
