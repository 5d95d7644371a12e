"""ECS deployments end to end: the real manager process, a real delegate, the sandbox.

The product document's own manifests deploy from each of the four stores; its invalid
JSON and an unknown field fail before any AWS call; a run task that exits 1 fails with
the container's reason; a blue/green swap is undone by `execution rollback`."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from cli.exitcodes import ExitCode
from testkit.sandbox_fixture import Aws
from testkit.stack import (
    ADMIN_TOKEN,
    DelegateRunner,
    ManagerApi,
    ManagerProcess,
    log_texts,
    wait_for,
)

DATA = Path(__file__).resolve().parents[1] / "tasks" / "manifests" / "data"


@pytest.fixture
async def ecs_delegate(aws: Aws, monkeypatch: pytest.MonkeyPatch, manager: ManagerProcess,
                       token: str) -> AsyncIterator[DelegateRunner]:
    for key, value in aws.environment().items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "2")
    async with DelegateRunner(manager.url, token, tags=("ecs",)) as d:
        await d.registered()
        yield d


def doc_file(name: str, aws: Aws, service_name: str | None = None) -> str:
    """One of the document's examples, its placeholders filled for the sandbox."""
    text = (DATA / name).read_text()
    text = text.replace("sg-0123456789abcdef0", aws.security_group)
    text = text.replace("subnet-0123456789abcdef0", aws.subnets[0])
    if service_name:
        text = text.replace("serviceName: myapp", f"serviceName: {service_name}")
    return text


def deploy_task(aws: Aws, manifests: dict[str, Any]) -> dict[str, Any]:
    return {"type": "ecs.rolling_deploy", "selectors": ["ecs"], "timeout": "2m",
            "context": {"artifact": {"image": "nginx:1.27"}},
            "params": {"region": aws.region, "cluster": aws.cluster, "pollInterval": "0.1s",
                       "steadyStateTimeout": "60s", "manifests": manifests}}


def run_task(aws: Aws, family: str, **environment: str) -> dict[str, Any]:
    """An ecs.run_task task file whose one container gets ``environment`` (the sandbox
    reads SANDBOX_* variables to decide how the task runs and ends)."""
    return {"type": "ecs.run_task", "selectors": ["ecs"], "params": {
        "region": aws.region, "cluster": aws.cluster, "pollInterval": "0.1s",
        "manifests": {
            "taskDefinition": {"store": "inline", "content": {
                "family": family, "requiresCompatibilities": ["FARGATE"],
                "networkMode": "awsvpc", "cpu": "256", "memory": "512",
                "containerDefinitions": [{
                    "name": family, "image": f"myorg/{family}:1", "essential": True,
                    "environment": [{"name": k, "value": v}
                                    for k, v in environment.items()]}]}},
            "runTaskRequest": {"store": "inline", "content": {
                "launchType": "FARGATE", "count": 1,
                "networkConfiguration": aws.network_configuration}}}}}


async def _upload(api: ManagerApi, path: str, text: str) -> None:
    r = await api.client.put("/api/files", params={"account": "acme", "path": path},
                             content=text.encode())
    r.raise_for_status()


def _git_repo(tmp: Path, files: dict[str, str]) -> Path:
    repo = tmp / "manifests-repo"
    repo.mkdir()
    for name, text in files.items():
        (repo / name).write_text(text)
    env_args = ["-c", "user.name=test", "-c", "user.email=test@example.com"]
    for cmd in (["init", "-q", "-b", "main"], ["add", "."],
                [*env_args, "commit", "-q", "-m", "manifests"]):
        subprocess.run(["git", *cmd], cwd=repo, check=True, capture_output=True)
    return repo


@pytest.mark.parametrize("store", ["files", "inline", "s3", "git"])
async def test_document_examples_deploy_from_each_store(
        store: str, aws: Aws, api: ManagerApi, ecs_delegate: DelegateRunner,
        tmp_path: Path) -> None:
    service = f"myapp-{store}"
    td_yaml = (DATA / "RegisterTaskDefinitionRequest.yaml").read_text()
    td_json = (DATA / "RegisterTaskDefinitionRequest.json").read_text()
    svc_yaml = doc_file("CreateServiceRequest.yaml", aws, service)
    if store == "files":
        await _upload(api, "account:/ECS Tutorial/RegisterTaskDefinitionRequest.yaml", td_yaml)
        await _upload(api, "account:/ECS Tutorial/CreateServiceRequest.yaml", svc_yaml)
        manifests = {
            "taskDefinition": {"store": "files", "paths": [
                "account:/ECS Tutorial/RegisterTaskDefinitionRequest.yaml"]},
            "serviceDefinition": {"store": "files", "paths": [
                "account:/ECS Tutorial/CreateServiceRequest.yaml"]}}
    elif store == "inline":  # the document's JSON task definition, nulls and all
        manifests = {"taskDefinition": {"store": "inline", "content": td_json},
                     "serviceDefinition": {"store": "inline", "content": svc_yaml}}
    elif store == "s3":
        s3 = aws.client("s3")
        s3.create_bucket(Bucket="manifests")
        s3.put_object(Bucket="manifests", Key="ecs/td.json", Body=td_json.encode())
        s3.put_object(Bucket="manifests", Key="ecs/service.yaml", Body=svc_yaml.encode())
        manifests = {"taskDefinition": {"store": "s3", "bucket": "manifests",
                                        "key": "ecs/td.json"},
                     "serviceDefinition": {"store": "s3", "bucket": "manifests",
                                           "key": "ecs/service.yaml"}}
    else:
        repo = _git_repo(tmp_path, {"td.yaml": td_yaml, "service.yaml": svc_yaml})
        manifests = {"taskDefinition": {"store": "git", "repo": str(repo), "ref": "main",
                                        "path": "td.yaml"},
                     "serviceDefinition": {"store": "git", "repo": str(repo), "ref": "main",
                                           "path": "service.yaml"}}
    task_id = await api.submit(deploy_task(aws, manifests))
    done = await api.wait_finished(task_id, timeout=90)
    texts = "\n".join(log_texts(await api.logs(task_id)))
    assert done["status"] == "SUCCESS", (done["error"], texts[-3000:])
    assert " Deployment Successful." in texts
    assert [u["name"] for u in done["units"]] == ["Fetch Manifests", "Prepare Rollback Data",
                                                  "Deploy"]
    live = aws.client("ecs").describe_services(cluster=aws.cluster,
                                               services=[service])["services"][0]
    assert live["runningCount"] == live["desiredCount"] == 1
    assert live["taskDefinition"] == done["output"]["taskDefinitionArn"]


def _nothing_created(aws: Aws) -> None:
    ecs = aws.client("ecs")
    assert ecs.list_services(cluster=aws.cluster)["serviceArns"] == []
    assert ecs.list_task_definitions()["taskDefinitionArns"] == []


async def test_documents_invalid_json_fails_with_line_and_column_and_creates_nothing(
        aws: Aws, api: ManagerApi, ecs_delegate: DelegateRunner) -> None:
    bad = doc_file("CreateServiceRequest.invalid.json", aws)
    td = (DATA / "RegisterTaskDefinitionRequest.yaml").read_text()
    task_id = await api.submit(deploy_task(aws, {
        "taskDefinition": {"store": "inline", "content": td},
        "serviceDefinition": {"store": "inline", "content": bad}}))
    done = await api.wait_finished(task_id, timeout=60)
    assert done["status"] == "FAILED"
    assert ":3:20" in done["error"] and "JSON" in done["error"], done["error"]
    assert done["units"][0] == {**done["units"][0], "name": "Fetch Manifests",
                                "status": "FAILURE"}
    _nothing_created(aws)


async def test_unknown_field_fails_with_its_path_and_creates_nothing(
        aws: Aws, api: ManagerApi, ecs_delegate: DelegateRunner) -> None:
    td = (DATA / "RegisterTaskDefinitionRequest.yaml").read_text().replace(
        "portMappings:", "portMapings:")
    svc = doc_file("CreateServiceRequest.yaml", aws)
    task_id = await api.submit(deploy_task(aws, {
        "taskDefinition": {"store": "inline", "content": td},
        "serviceDefinition": {"store": "inline", "content": svc}}))
    done = await api.wait_finished(task_id, timeout=60)
    assert done["status"] == "FAILED"
    assert "containerDefinitions[0].portMapings" in done["error"]
    assert "portMappings" in done["error"]  # the suggestion
    _nothing_created(aws)


async def test_run_task_exit_1_fails_with_the_containers_reason(
        aws: Aws, api: ManagerApi, ecs_delegate: DelegateRunner) -> None:
    task_id = await api.submit(run_task(
        aws, "migrate", SANDBOX_EXIT_CODE="1",
        SANDBOX_EXIT_REASON="relation users already exists", SANDBOX_RUN_SECONDS="0.2"))
    done = await api.wait_finished(task_id, timeout=60)
    assert done["status"] == "FAILED"
    texts = "\n".join(log_texts(await api.logs(task_id)))
    assert "exit code 1" in (done["error"] + texts).lower() or "exitcode 1" in texts.lower()
    assert "relation users already exists" in texts
    assert done["output"]["tasks"][0]["containers"][0]["exitCode"] == 1


async def test_blue_green_swap_then_execution_rollback_restores_traffic(
        aws: Aws, api: ManagerApi, ecs_delegate: DelegateRunner) -> None:
    elbv2 = aws.client("elbv2")
    vpc = aws.client("ec2").describe_subnets(SubnetIds=aws.subnets[:1])["Subnets"][0]["VpcId"]
    lb = elbv2.create_load_balancer(Name="web", Subnets=aws.subnets[:2],
                                    SecurityGroups=[aws.security_group])["LoadBalancers"][0]
    tg1, tg2 = (elbv2.create_target_group(Name=n, Protocol="HTTP", Port=80, VpcId=vpc,
                                          TargetType="ip")["TargetGroups"][0]["TargetGroupArn"]
                for n in ("target1", "target2"))
    prod, stage = (elbv2.create_listener(
        LoadBalancerArn=lb["LoadBalancerArn"], Protocol="HTTP", Port=port,
        DefaultActions=[{"Type": "forward", "TargetGroupArn": tg}])["Listeners"][0]["ListenerArn"]
        for port, tg in ((80, tg1), (8080, tg2)))

    def prod_target() -> str:
        return str(elbv2.describe_listeners(ListenerArns=[prod])["Listeners"][0]
                   ["DefaultActions"][0]["TargetGroupArn"])

    execution = {
        "name": "bg", "service": "myapp", "selectors": ["ecs"],
        "infrastructure": {"region": aws.region, "cluster": aws.cluster},
        "artifact": {"image": "nginx:1.27"},
        "steps": [
            {"id": "create", "type": "ecs.blue_green_create_service", "params": {
                "loadBalancer": "web", "prodListenerArn": prod, "stageListenerArn": stage,
                "pollInterval": "0.1s", "manifests": {
                    "taskDefinition": {"store": "inline", "content": (
                        DATA / "RegisterTaskDefinitionRequest.yaml").read_text()},
                    "serviceDefinition": {"store": "inline", "content": doc_file(
                        "BlueGreenServiceRequest.yaml", aws)}}}},
            {"id": "swap", "type": "ecs.blue_green_swap_target_groups", "params": {
                "pollInterval": "0.1s",
                "blueGreen": "<+execution.steps.create.output.blueGreen>"}}],
        "rollbackSteps": [
            {"id": "undo", "type": "ecs.blue_green_rollback", "rollsBack": "create",
             "params": {"pollInterval": "0.1s",
                        "blueGreen": "<+execution.steps.create.output.blueGreen>"}}],
    }
    r = await api.client.post("/api/executions", json=execution)
    assert r.status_code == 201, r.text
    eid = r.json()["execution_id"]
    view = await api.wait_execution(eid)
    assert view["status"] == "SUCCESS", json.dumps(view)[:2000]
    assert prod_target() == tg2  # traffic on the new service
    r = await api.client.post(f"/api/executions/{eid}/rollback")
    assert r.status_code == 200, r.text
    view = await api.wait_execution(eid)
    assert view["status"] == "ROLLED_BACK", json.dumps(view)[:2000]
    assert prod_target() == tg1  # traffic back where it was


async def test_service_discovery_registry_and_circuit_breaker_pass_through(
        aws: Aws, api: ManagerApi, ecs_delegate: DelegateRunner) -> None:
    """The document's service mesh example: a Cloud Map registry in the service definition
    reaches ECS, as does its deployment circuit breaker configuration."""
    sd = aws.client("servicediscovery")
    vpc = aws.client("ec2").describe_subnets(SubnetIds=aws.subnets[:1])["Subnets"][0]["VpcId"]
    sd.create_private_dns_namespace(Name="internal", Vpc=vpc)
    namespace = sd.list_namespaces()["Namespaces"][0]["Id"]
    registry = sd.create_service(Name="ecs-svc-discovery", NamespaceId=namespace,
                                 DnsConfig={"DnsRecords": [{"Type": "A", "TTL": 60}]})
    registry_arn = registry["Service"]["Arn"]
    svc = doc_file("CreateServiceRequest.yaml", aws, "ecs-svc-discovery").replace(
        "  minimumHealthyPercent: 100\n",
        "  minimumHealthyPercent: 100\n"
        "  deploymentCircuitBreaker: {enable: true, rollback: true}\n",
    ) + f"serviceRegistries:\n  - registryArn: {registry_arn}\n"
    td = (DATA / "RegisterTaskDefinitionRequest.yaml").read_text()
    task_id = await api.submit(deploy_task(aws, {
        "taskDefinition": {"store": "inline", "content": td},
        "serviceDefinition": {"store": "inline", "content": svc}}))
    done = await api.wait_finished(task_id, timeout=60)
    assert done["status"] == "SUCCESS", done["error"]
    live = aws.client("ecs").describe_services(cluster=aws.cluster,
                                               services=["ecs-svc-discovery"])["services"][0]
    assert live["serviceRegistries"] == [{"registryArn": registry_arn}]
    breaker = live["deploymentConfiguration"]["deploymentCircuitBreaker"]
    assert breaker == {"enable": True, "rollback": True}


async def test_an_aborted_run_task_stops_the_tasks_it_started(
        aws: Aws, api: ManagerApi, ecs_delegate: DelegateRunner) -> None:
    task_id = await api.submit(run_task(aws, "long-job", SANDBOX_RUN_SECONDS="600"))
    ecs = aws.client("ecs")

    def running_arn() -> str | None:
        arns = ecs.list_tasks(cluster=aws.cluster, family="long-job")["taskArns"]
        if not arns:
            return None
        task = ecs.describe_tasks(cluster=aws.cluster, tasks=arns)["tasks"][0]
        return str(task["taskArn"]) if task["lastStatus"] == "RUNNING" else None

    arn = await wait_for(running_arn, timeout=30, interval=0.1, what="the job to run")
    await api.abort(task_id)
    done = await api.wait_finished(task_id, timeout=30)
    assert done["status"] == "ABORTED"
    task = ecs.describe_tasks(cluster=aws.cluster, tasks=[arn])["tasks"][0]
    assert task["desiredStatus"] == "STOPPED"
    assert task["stoppedReason"] == "ecs-delegate: step aborted"
    texts = "\n".join(log_texts(await api.logs(task_id)))
    assert "Stopping 1 task(s) this step started" in texts


def _rolling_execution(aws: Aws, image: str) -> dict[str, Any]:
    return {
        "name": f"deploy {image}", "service": "myapp-rb", "selectors": ["ecs"],
        "infrastructure": {"region": aws.region, "cluster": aws.cluster},
        "artifact": {"image": image},
        "steps": [{"id": "deploy", "type": "ecs.rolling_deploy", "params": {
            "pollInterval": "0.1s", "steadyStateTimeout": "60s", "manifests": {
                "taskDefinition": {"store": "inline", "content": (
                    DATA / "RegisterTaskDefinitionRequest.yaml").read_text()},
                "serviceDefinition": {"store": "inline", "content": doc_file(
                    "CreateServiceRequest.yaml", aws, "myapp-rb")}}}}],
        "rollbackSteps": [{"id": "undo", "type": "ecs.rolling_rollback", "rollsBack": "deploy",
                           "params": {"pollInterval": "0.1s", "rollbackData":
                                      "<+execution.steps.deploy.output.rollbackData>"}}],
    }


async def _finished(api: ManagerApi, eid: str) -> dict[str, Any]:
    return await api.wait_execution(eid)


def _live_rb(aws: Aws) -> dict[str, Any]:
    """Service myapp-rb as ECS describes it now."""
    svc: dict[str, Any] = aws.client("ecs").describe_services(
        cluster=aws.cluster, services=["myapp-rb"])["services"][0]
    return svc


async def _succeed_in_turn(api: ManagerApi, specs: list[dict[str, Any]]) -> list[str]:
    """Submit each execution after the previous one succeeded; their ids, in order."""
    eids = []
    for spec in specs:
        r = await api.client.post("/api/executions", json=spec)
        assert r.status_code == 201, r.text
        eids.append(r.json()["execution_id"])
        done = await _finished(api, eids[-1])
        assert done["status"] == "SUCCESS", json.dumps(done)[:2000]
    return eids


async def test_rolling_back_a_superseded_deployment_is_refused_and_the_latest_restores(
        aws: Aws, api: ManagerApi, ecs_delegate: DelegateRunner) -> None:
    """Issue 17: rolling back the deployment that created a service, after a newer one
    updated it, would delete the live service. It is refused with the newer execution
    named; rolling back the latest one restores the first one's task definition."""
    first, second = await _succeed_in_turn(
        api, [_rolling_execution(aws, image) for image in ("nginx:1.27", "nginx:1.28")])
    first_td = (await _finished(api, first))["runs"][0]["output"]["taskDefinitionArn"]
    second_td = _live_rb(aws)["taskDefinition"]
    assert second_td != first_td

    r = await api.client.post(f"/api/executions/{first}/rollback")
    assert r.status_code == 409, r.text
    detail = r.json()["detail"]
    assert f"- {second} (deploy nginx:1.28)" in detail
    assert "delete service myapp-rb, which the deployment created" in detail
    assert (_live_rb(aws)["status"], _live_rb(aws)["taskDefinition"]) == ("ACTIVE", second_td)
    assert (await _finished(api, first))["status"] == "SUCCESS"

    r = await api.client.post(f"/api/executions/{second}/rollback")
    assert r.status_code == 200, r.text
    assert f"restore service myapp-rb to task definition {first_td}" in r.json()["plan"]
    view = await _finished(api, second)
    assert (view["status"], view["rollback_requested"]) == ("ROLLED_BACK", True), \
        json.dumps(view)[:2000]
    assert (_live_rb(aws)["status"], _live_rb(aws)["taskDefinition"]) == ("ACTIVE", first_td)


async def test_a_steady_state_timeout_is_timed_out_and_submit_exits_4(
        aws: Aws, manager: ManagerProcess, api: ManagerApi, ecs_delegate: DelegateRunner,
        tmp_path: Path) -> None:
    """Issue 16: running out of steadyStateTimeout is not a failure of the service; the
    step ends TIMED_OUT and `delegate submit` exits with the documented code 4 (it was
    FAILED, exit 1). The slow-start image keeps the sandbox's tasks PROVISIONING past it."""
    spec = _rolling_execution(aws, "nginx:slow-start")
    spec["service"] = spec["name"] = "myapp-slow"
    params = spec["steps"][0]["params"]
    params["steadyStateTimeout"] = "0.3s"
    params["manifests"]["serviceDefinition"]["content"] = doc_file(
        "CreateServiceRequest.yaml", aws, "myapp-slow")
    path = tmp_path / "slow.json"
    path.write_text(json.dumps(spec))
    env = {"MANAGER_HOST_AND_PORT": manager.url, "MANAGER_ADMIN_TOKEN": ADMIN_TOKEN,
           "ACCOUNT_ID": "acme", "NO_COLOR": "1"}
    done = await asyncio.to_thread(
        subprocess.run, [sys.executable, "-m", "cli", "submit", str(path), "-o", "json"],
        capture_output=True, text=True, timeout=90, env={**os.environ, **env})
    assert done.returncode == ExitCode.TIMED_OUT, (done.stdout[-2000:], done.stderr)
    view = json.loads(done.stdout)
    deploy = next(run for run in view["runs"] if run["step_id"] == "deploy")
    assert deploy["status"] == "TIMED_OUT", deploy
    assert "did not reach steady state within 0.3s" in deploy["error"]


async def test_a_forced_rollback_over_a_newer_deployment_is_refused_at_the_step(
        aws: Aws, api: ManagerApi, ecs_delegate: DelegateRunner) -> None:
    """Issue 17: forcing the rollback of a superseded execution past the manager's 409
    must still not delete (or restore over) the service the newer execution runs: the
    rollback step refuses, saying what changed, and writes nothing."""
    first_spec = _rolling_execution(aws, "nginx:1.27")
    second_spec = _rolling_execution(aws, "nginx:1.28")
    manifests = second_spec["steps"][0]["params"]["manifests"]["serviceDefinition"]
    manifests["content"] = manifests["content"].replace("desiredCount: 1", "desiredCount: 2")
    first, second = await _succeed_in_turn(api, [first_spec, second_spec])
    first_td = (await _finished(api, first))["runs"][0]["output"]["taskDefinitionArn"]
    second_td = (await _finished(api, second))["runs"][0]["output"]["taskDefinitionArn"]
    assert (_live_rb(aws)["taskDefinition"], _live_rb(aws)["desiredCount"]) == (second_td, 2)

    r = await api.client.post(f"/api/executions/{first}/rollback", json={"force": True})
    assert r.status_code == 200, r.text
    view = await _finished(api, first)
    assert view["status"] == "FAILED", json.dumps(view)[:2000]
    undo = next(run for run in view["runs"] if run["phase"] == "rollback")
    assert undo["status"] == "FAILED", json.dumps(undo)
    short = lambda arn: arn.rsplit("/", 1)[-1]  # noqa: E731
    assert undo["error"].startswith(
        f"Service myapp-rb's PRIMARY deployment now runs {short(second_td)}; this deployment "
        f"left {short(first_td)}: someone deployed since; refusing to roll back over it"), \
        undo["error"]
    svc = _live_rb(aws)
    assert (svc["status"], svc["taskDefinition"], svc["desiredCount"]) == (
        "ACTIVE", second_td, 2)
    texts = "\n".join(log_texts(await api.logs(undo["task_id"])))
    assert "Deleting service" not in texts


async def test_a_requested_rollback_registers_a_deregistered_revision_again(
        aws: Aws, api: ManagerApi, ecs_delegate: DelegateRunner) -> None:
    """Issue 16: ECS refuses UpdateService to a deregistered (INACTIVE) revision, so the
    rollback of the latest deployment, after someone deregistered the revision it
    restores, registers that revision's saved definition again and deploys it."""
    ecs = aws.client("ecs")
    first, second = await _succeed_in_turn(
        api, [_rolling_execution(aws, image) for image in ("nginx:1.27", "nginx:1.28")])
    first_td = (await _finished(api, first))["runs"][0]["output"]["taskDefinitionArn"]
    ecs.deregister_task_definition(taskDefinition=first_td)

    r = await api.client.post(f"/api/executions/{second}/rollback")
    assert r.status_code == 200, r.text
    view = await _finished(api, second)
    assert view["status"] == "ROLLED_BACK", json.dumps(view)[:2000]
    undo = next(run for run in view["runs"] if run["phase"] == "rollback")
    again = undo["output"]["taskDefinitionArn"]
    short = lambda arn: arn.rsplit("/", 1)[-1]  # noqa: E731
    assert short(again) == "fargate-task-definition:3"
    texts = log_texts(await api.logs(undo["task_id"]))
    assert (f"Revision {short(first_td)} was deregistered; registered it again as "
            f"{short(again)}") in texts
    svc = _live_rb(aws)
    assert (svc["status"], svc["taskDefinition"], svc["runningCount"]) == (
        "ACTIVE", again, svc["desiredCount"])
    images = [c["image"] for c in ecs.describe_task_definition(
        taskDefinition=again)["taskDefinition"]["containerDefinitions"]]
    assert images == [c["image"] for c in ecs.describe_task_definition(
        taskDefinition=first_td)["taskDefinition"]["containerDefinitions"]]
