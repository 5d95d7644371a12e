"""Look-ups end to end: ``GET /api/lookups/KIND`` on the real manager process, answered by
a real delegate against the sandbox. Every kind answers what the sandbox holds in under a
second; selectors no delegate has are refused in under a second, naming them; a missing
parameter and an AWS refusal come back as one-line errors; the CLI prints a table and
``--output json``."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from typing import Any

import pytest

from testkit.sandbox_fixture import Aws
from testkit.stack import ADMIN_TOKEN, DelegateRunner, ManagerApi, ManagerProcess

LOOPBACK_BUDGET = 1.0  # seconds: the "in under a second on loopback"


@pytest.fixture
def resources(aws: Aws) -> dict[str, str]:
    """An ALB with a listener and a rule, two target groups (one with a target), an ECR
    repository with an image, and a service in the test's cluster."""
    ec2, elbv2, ecr, ecs = (aws.client(s) for s in ("ec2", "elbv2", "ecr", "ecs"))
    vpc = ec2.describe_subnets(SubnetIds=[aws.subnets[0]])["Subnets"][0]["VpcId"]
    lb = elbv2.create_load_balancer(Name="lookup-alb", Subnets=aws.subnets,
                                    SecurityGroups=[aws.security_group],
                                    Type="application")["LoadBalancers"][0]["LoadBalancerArn"]
    blue, green = (elbv2.create_target_group(
        Name=name, Protocol="HTTP", Port=80, VpcId=vpc, TargetType="ip",
    )["TargetGroups"][0]["TargetGroupArn"] for name in ("lookup-blue", "lookup-green"))
    elbv2.register_targets(TargetGroupArn=blue, Targets=[{"Id": "10.10.1.5", "Port": 80}])
    listener = elbv2.create_listener(
        LoadBalancerArn=lb, Protocol="HTTP", Port=80,
        DefaultActions=[{"Type": "forward", "TargetGroupArn": blue}])["Listeners"][0]
    elbv2.create_rule(ListenerArn=listener["ListenerArn"], Priority=10,
                      Conditions=[{"Field": "path-pattern", "Values": ["/api/*"]}],
                      Actions=[{"Type": "forward", "TargetGroupArn": green}])
    ecr.create_repository(repositoryName="lookup-app")
    ecr.put_image(repositoryName="lookup-app", imageTag="v1", imageManifest=json.dumps({
        "schemaVersion": 2, "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
        "config": {"digest": "sha256:" + "a" * 64, "size": 1,
                   "mediaType": "application/vnd.docker.container.image.v1+json"},
        "layers": []}))
    td = ecs.register_task_definition(
        family="lookup-web", requiresCompatibilities=["FARGATE"], networkMode="awsvpc",
        cpu="256", memory="512", containerDefinitions=[
            {"name": "web", "image": "nginx:1.27", "essential": True}],
    )["taskDefinition"]["taskDefinitionArn"]
    ecs.create_service(cluster=aws.cluster, serviceName="lookup-svc", taskDefinition=td,
                       desiredCount=1, launchType="FARGATE",
                       networkConfiguration=aws.network_configuration)
    return {"vpc": vpc, "lb": lb, "listener": listener["ListenerArn"], "blue": blue}


async def _lookup(api: ManagerApi, kind: str, aws: Aws, **params: Any) -> tuple[Any, float]:
    started = time.monotonic()
    r = await api.client.get(f"/api/lookups/{kind}",
                             params={"region": aws.region, "selectors": "ecs", **params})
    return r, time.monotonic() - started


async def test_every_kind_answers_from_the_sandbox_in_under_a_second(
        aws: Aws, api: ManagerApi, aws_delegate: DelegateRunner,
        resources: dict[str, str]) -> None:
    await _lookup(api, "clusters", aws)  # the first call pays for the AWS clients
    asks: dict[str, dict[str, str]] = {
        "clusters": {}, "services": {"cluster": aws.cluster},
        "load-balancers": {}, "listeners": {"loadBalancer": "lookup-alb"},
        "listener-rules": {"listener": resources["listener"]},
        "target-groups": {"loadBalancer": resources["lb"]}, "repositories": {},
        "images": {"repository": "lookup-app"}, "subnets": {"vpc": resources["vpc"]},
        "security-groups": {"vpc": resources["vpc"]}}
    answers: dict[str, list[dict[str, Any]]] = {}
    for kind, params in asks.items():
        r, seconds = await _lookup(api, kind, aws, **params)
        assert r.status_code == 200, (kind, r.text)
        body = r.json()
        assert body["kind"] == kind and body["region"] == aws.region
        assert body["delegate"] == "d1" and body["truncated"] is False
        assert seconds < LOOPBACK_BUDGET, (kind, seconds)
        answers[kind] = body["items"]

    cluster = next(c for c in answers["clusters"] if c["name"] == aws.cluster)
    assert cluster["status"] == "ACTIVE" and cluster["activeServices"] == 1
    [service] = answers["services"]
    assert (service["name"], service["taskDefinition"]) == ("lookup-svc", "lookup-web:1")
    [lb] = [b for b in answers["load-balancers"] if b["name"] == "lookup-alb"]
    assert (lb["type"], lb["arn"]) == ("application", resources["lb"])
    [listener] = answers["listeners"]
    assert (listener["port"], listener["protocol"]) == (80, "HTTP")
    assert listener["defaultTargetGroups"] == ["lookup-blue"]
    rules = answers["listener-rules"]
    assert [(r["priority"], r["targetGroups"]) for r in rules] == [
        ("10", ["lookup-green"]), ("default", ["lookup-blue"])]
    assert rules[0]["conditions"] == ["path-pattern=/api/*"]
    groups = {g["name"]: g for g in answers["target-groups"]}
    assert set(groups) == {"lookup-blue", "lookup-green"}
    assert [t["id"] for t in groups["lookup-blue"]["targets"]] == ["10.10.1.5"]
    assert [r["name"] for r in answers["repositories"]] == ["lookup-app"]
    [image] = answers["images"]
    assert image["tags"] == ["v1"] and image["digest"].startswith("sha256:")
    assert {s["subnetId"] for s in answers["subnets"]} == set(aws.subnets)
    assert aws.security_group in {g["groupId"] for g in answers["security-groups"]}


async def test_selectors_no_delegate_has_fail_fast_naming_them(
        aws: Aws, api: ManagerApi, aws_delegate: DelegateRunner) -> None:
    r, seconds = await _lookup(api, "clusters", aws, selectors="ecs,gpu")
    assert r.status_code == 409, r.text
    assert seconds < LOOPBACK_BUDGET
    detail = r.json()["detail"]
    assert "no connected delegate has tags [gpu]" in detail, detail
    assert "d1" in detail  # which delegates were there
    queued = (await api.client.get("/api/tasks", params={"status": "QUEUED"})).json()
    assert queued["tasks"] == []  # refused, not left waiting in the queue


async def test_no_delegate_at_all_fails_fast(aws: Aws, api: ManagerApi, token: str) -> None:
    r, seconds = await _lookup(api, "subnets", aws)
    assert r.status_code == 409 and seconds < LOOPBACK_BUDGET
    assert "no delegate connected" in r.json()["detail"]


async def test_missing_parameter_and_aws_refusal_are_one_line_errors(
        aws: Aws, api: ManagerApi, aws_delegate: DelegateRunner) -> None:
    r, _ = await _lookup(api, "listeners", aws)
    assert r.status_code == 400
    assert "needs loadBalancer" in r.json()["detail"]
    r, _ = await _lookup(api, "listeners", aws, loadBalancer="no-such-alb")
    assert r.status_code == 502
    detail = r.json()["detail"]
    assert "no-such-alb" in detail and "\n" not in detail and "Traceback" not in detail
    r, _ = await _lookup(api, "nothing", aws)
    assert r.status_code == 404 and "kinds: clusters" in r.json()["detail"]


async def _cli(manager: ManagerProcess, *args: str) -> tuple[int, str, str]:
    env = {**os.environ, "MANAGER_HOST_AND_PORT": manager.url,
           "MANAGER_ADMIN_TOKEN": ADMIN_TOKEN}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "cli", *args, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def test_cli_prints_a_table_and_json(aws: Aws, manager: ManagerProcess,
                                           aws_delegate: DelegateRunner) -> None:
    code, out, err = await _cli(manager, "lookup", "subnets", "--region", aws.region,
                                "--selectors", "ecs")
    assert code == 0, err
    header = out.splitlines()[0].split()
    assert header[:3] == ["SUBNETID", "NAME", "VPCID"]
    assert all(subnet in out for subnet in aws.subnets)
    code, out, err = await _cli(manager, "lookup", "clusters", "--region", aws.region,
                                "--selectors", "ecs", "--output", "json")
    assert code == 0, err
    assert aws.cluster in [c["name"] for c in json.loads(out)["items"]]
    code, out, err = await _cli(manager, "lookup", "clusters", "--region", aws.region,
                                "--selectors", "nowhere")
    assert code != 0 and "no connected delegate has tags [nowhere]" in err
    assert "Traceback" not in err
