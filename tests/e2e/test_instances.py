"""Instance sync end to end: the real manager process tracks what real deployment tasks
deployed, sends ``instances.sync`` to a real delegate, and stores what the sandbox runs.
A good deployment is in sync with its running tasks described; a deployment whose
circuit breaker rolled ECS back shows as drift; a service deleted out of band is marked
deleted, not dropped; one no delegate can reach is marked unreachable; the gauge counts
instances per service and revision."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from testkit.sandbox_fixture import Aws
from testkit.stack import ADMIN_TOKEN, DelegateRunner, ManagerApi, ManagerProcess, wait_for


def deploy_task(aws: Aws, service: str, image: str) -> dict[str, Any]:
    """A rolling deploy of ``service`` running ``image``, with the circuit breaker on."""
    return {"type": "ecs.rolling_deploy", "selectors": ["ecs"], "timeout": "2m",
            "context": {"artifact": {"image": image}},
            "params": {"region": aws.region, "cluster": aws.cluster, "pollInterval": "0.1s",
                       "steadyStateTimeout": "60s", "manifests": {
                           "taskDefinition": {"store": "inline", "content": {
                               "family": service, "requiresCompatibilities": ["FARGATE"],
                               "networkMode": "awsvpc", "cpu": "256", "memory": "512",
                               "containerDefinitions": [{
                                   "name": "web", "image": "<+primary.artifact.image>",
                                   "essential": True}]}},
                           "serviceDefinition": {"store": "inline", "content": {
                               "serviceName": service, "desiredCount": 2,
                               "launchType": "FARGATE",
                               "networkConfiguration": aws.network_configuration,
                               "deploymentConfiguration": {
                                   "maximumPercent": 200, "minimumHealthyPercent": 100,
                                   "deploymentCircuitBreaker": {"enable": True,
                                                                "rollback": True}}}}}}}


async def _deploy(api: ManagerApi, aws: Aws, service: str, image: str) -> dict[str, Any]:
    return await api.wait_finished(await api.submit(deploy_task(aws, service, image)),
                                   timeout=90)


async def _sync(api: ManagerApi) -> dict[str, Any]:
    r = await api.client.post("/api/instances/sync", params={"wait": 30})
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


async def _services(api: ManagerApi) -> dict[str, dict[str, Any]]:
    r = await api.client.get("/api/instances")
    assert r.status_code == 200, r.text
    return {s["service"]: s for s in r.json()["services"]}


async def test_sync_reports_tasks_drift_after_a_circuit_breaker_and_deleted_services(
        aws: Aws, api: ManagerApi, aws_delegate: DelegateRunner) -> None:
    good = await _deploy(api, aws, "web", "nginx:1.27")
    assert good["status"] == "SUCCESS", good["error"]
    other = await _deploy(api, aws, "worker", "nginx:1.27")
    assert other["status"] == "SUCCESS", other["error"]
    assert {s["state"] for s in (await _services(api)).values()} == {"pending"}

    sent = await _sync(api)
    assert len(sent["submitted"]) == 1  # one task for the cluster, not one per service
    services = await _services(api)
    web = services["web"]
    assert web["state"] == "in_sync", web
    assert web["deployed"]["revision"] == "web:1" == web["service_revision"]
    assert web["deployed"]["image"] == "nginx:1.27"
    assert len(web["instances"]) == 2
    live = aws.client("ecs").describe_services(cluster=aws.cluster,
                                               services=["web"])["services"][0]
    primary = live["deployments"][0]["id"]
    for task in web["instances"]:
        assert task["revision"] == "web:1" and task["launchType"] == "FARGATE"
        assert task["deploymentId"] == primary
        assert task["availabilityZone"] and task["startedAt"]
        assert [c["image"] for c in task["containers"]] == ["nginx:1.27"]
    assert [c["kind"] for c in web["changes"]] == ["started", "started"]

    # The circuit breaker rolls ECS back to web:1; we asked for web:2: drift.
    failed = await _deploy(api, aws, "web", "nginx:fail-to-start")
    assert failed["status"] == "FAILED"
    await _sync(api)
    web = (await _services(api))["web"]
    assert web["state"] == "drift", web
    assert web["deployed"]["revision"] == "web:2" and web["deployed"]["status"] == "FAILED"
    assert web["service_revision"] == "web:1"
    assert web["reason"] == "runs web:1, deployed web:2"
    assert {t["revision"] for t in web["instances"]} == {"web:1"}
    assert web["changes"][0]["kind"] == "drift"

    # Deleted out of band: marked, with its tasks stopped, not dropped.
    ecs = aws.client("ecs")
    ecs.delete_service(cluster=aws.cluster, service="worker", force=True)
    await wait_for(lambda: len(ecs.list_tasks(cluster=aws.cluster)["taskArns"]) == 2,
                   what="the deleted service's tasks to stop (web's two remain)")
    await _sync(api)
    worker = (await _services(api))["worker"]
    assert worker["state"] == "deleted", worker
    assert worker["instances"] == []
    kinds = [c["kind"] for c in worker["changes"]]
    assert kinds[0] == "deleted" and kinds.count("stopped") == 2

    metrics = (await api.client.get("/metrics")).text
    samples = {(s.labels["service"], s.labels["revision"], s.labels["state"]): s.value
               for family in text_string_to_metric_families(metrics)
               for s in family.samples if family.name == "ecs_delegate_instances"}
    assert samples[("web", "web:1", "drift")] == 2


async def test_a_cluster_no_delegate_reaches_is_marked_unreachable(
        aws: Aws, api: ManagerApi, aws_delegate: DelegateRunner) -> None:
    done = await _deploy(api, aws, "lonely", "nginx:1.27")
    assert done["status"] == "SUCCESS", done["error"]
    await _sync(api)
    assert (await _services(api))["lonely"]["state"] == "in_sync"
    await aws_delegate.stop()

    async def gone() -> bool:
        return all(d["state"] == "disconnected" for d in await api.delegates())

    await wait_for(gone, timeout=20)
    sent = await _sync(api)
    assert sent["submitted"] == []
    [reach] = sent["unreachable"]
    assert reach["cluster"] == aws.cluster and "no delegate connected" in reach["reason"]
    lonely = (await _services(api))["lonely"]
    assert lonely["state"] == "unreachable"
    assert len(lonely["instances"]) == 2  # the last snapshot stays, marked unreachable
    assert lonely["changes"][0]["kind"] == "unreachable"


async def test_cli_syncs_and_prints_instances(aws: Aws, manager: ManagerProcess,
                                              api: ManagerApi,
                                              aws_delegate: DelegateRunner) -> None:
    done = await _deploy(api, aws, "shown", "nginx:1.27")
    assert done["status"] == "SUCCESS", done["error"]
    env = {**os.environ, "MANAGER_HOST_AND_PORT": manager.url,
           "MANAGER_ADMIN_TOKEN": ADMIN_TOKEN}

    async def cli(*args: str) -> tuple[int, str, str]:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "cli", "instances", *args, env=env,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        out, err = await asyncio.wait_for(proc.communicate(), 60)
        return proc.returncode or 0, out.decode(), err.decode()

    code, out, err = await cli("shown", "--sync")
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].split()[:3] == ["SERVICE", "CLUSTER", "STATE"]
    assert lines[1].split()[:3] == ["shown", aws.cluster, "in_sync"]
    assert sum(1 for line in lines if line.startswith("shown ")) == 3  # 1 service, 2 tasks
    code, out, err = await cli("-o", "json")
    assert code == 0, err
    [shown] = json.loads(out)["services"]
    assert shown["state"] == "in_sync" and len(shown["instances"]) == 2


@pytest.mark.parametrize("manager_args", [("--instance-sync-interval", "0.5s")])
async def test_the_interval_timer_syncs_without_being_asked(
        aws: Aws, api: ManagerApi, aws_delegate: DelegateRunner) -> None:
    done = await _deploy(api, aws, "timed", "nginx:1.27")
    assert done["status"] == "SUCCESS", done["error"]

    async def synced() -> dict[str, Any] | None:
        timed = (await _services(api)).get("timed")
        return timed if timed and timed["state"] == "in_sync" else None

    timed = await wait_for(synced, timeout=30, what="the timer's sync of service timed")
    assert len(timed["instances"]) == 2 and timed["synced_at"]
    interval = (await api.client.get("/api/instances")).json()["interval"]
    assert interval == 0.5
