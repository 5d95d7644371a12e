"""Artifact sources end to end (issue 11): the real manager process, a real delegate, the
sandbox's ECS, ECR in moto and the reference Docker registry started by the test.

A missing fixed tag fails the execution at its first step, before any AWS write, naming
the tags that exist; ``tagRegex`` takes the newest; the deployed task definition names
the image by digest; a re-run after a newer tag was pushed deploys the recorded digest."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from testkit import registry as reg
from testkit.sandbox_fixture import Aws
from testkit.stack import ADMIN_TOKEN, DelegateRunner, ManagerApi, ManagerProcess
from tests.e2e.test_services import inline, service_definition, task_definition


@pytest.fixture
def docker_registry(tmp_path: Path) -> Iterator[reg.Registry]:
    reg.require()
    (tmp_path / "registry").mkdir()
    started = reg.Registry(tmp_path / "registry", token_auth=True).start()
    try:
        yield started
    finally:
        started.stop()


def _task_definition() -> dict[str, Any]:
    td = task_definition()
    td["containerDefinitions"][0]["environment"] = [
        {"name": "TAG", "value": "<+artifact.tag>"},
        {"name": "DIGEST", "value": "<+artifact.digest>"}]
    return td


def execution(aws: Aws, artifact: dict[str, Any], *, fail_if: Path | None = None,
              secrets: dict[str, str] | None = None) -> dict[str, Any]:
    steps: list[dict[str, Any]] = [{"id": "deploy", "type": "ecs.rolling_deploy", "params": {
        "pollInterval": "0.1s", "steadyStateTimeout": "30s", "manifests": {
            "taskDefinition": inline(_task_definition()),
            "serviceDefinition": inline(service_definition(aws, 1))}}}]
    if fail_if is not None:
        steps.append({"id": "check", "type": "shell.script", "params": {
            "script": f"if [ -e {fail_if} ]; then echo 'failing on purpose'; exit 1; fi"}})
    return {"name": "deploy from a registry", "service": "myapp", "selectors": ["ecs"],
            "infrastructure": {"region": aws.region, "cluster": aws.cluster},
            "artifact": artifact, "secrets": secrets or {}, "steps": steps}


async def _run(api: ManagerApi, spec: dict[str, Any]) -> dict[str, Any]:
    r = await api.client.post("/api/executions", json=spec)
    assert r.status_code == 201, r.text
    return await api.wait_execution(r.json()["execution_id"])


def _deployed(aws: Aws) -> tuple[str, dict[str, str]]:
    ecs = aws.client("ecs")
    svc = ecs.describe_services(cluster=aws.cluster, services=["myapp"])["services"][0]
    td = ecs.describe_task_definition(taskDefinition=svc["taskDefinition"])["taskDefinition"]
    container = td["containerDefinitions"][0]
    return container["image"], {e["name"]: e["value"] for e in container["environment"]}


def _push_ecr(aws: Aws, repository: str, tag: str) -> str:
    # moto's digest is that of the layer digests: one layer per tag, so each differs.
    layer = "sha256:" + hashlib.sha256(f"{repository}:{tag}".encode()).hexdigest()
    manifest = json.dumps({"schemaVersion": 2, "mediaType": reg.MANIFEST_V2,
                           "layers": [{"digest": layer, "size": 1}]})
    image = aws.client("ecr").put_image(repositoryName=repository, imageManifest=manifest,
                                        imageTag=tag)["image"]
    return str(image["imageId"]["imageDigest"])


async def test_a_missing_tag_fails_before_any_aws_write_naming_the_tags(
        aws: Aws, api: ManagerApi, aws_delegate: DelegateRunner) -> None:
    ecr = aws.client("ecr")
    ecr.create_repository(repositoryName="myorg/app")
    for tag in ("1.27.1", "1.27.2", "1.27.4", "latest"):
        _push_ecr(aws, "myorg/app", tag)
    done = await _run(api, execution(aws, {"source": {"type": "ecr", "repository": "myorg/app"},
                                           "tag": "1.27.3"}))
    assert done["status"] == "FAILED", json.dumps(done)[:2000]
    assert [(r["step_id"], r["status"]) for r in done["runs"]] == [("artifact", "FAILED")]
    assert "myorg/app: tag '1.27.3' does not exist; tags nearby: " in done["error"]
    for tag in ("1.27.2", "1.27.4"):
        assert tag in done["error"]
    ecs = aws.client("ecs")
    assert ecs.list_task_definitions()["taskDefinitionArns"] == []
    assert ecs.list_services(cluster=aws.cluster)["serviceArns"] == []


async def test_ecr_tag_regex_deploys_the_digest_and_a_rerun_keeps_it(
        aws: Aws, api: ManagerApi, manager: ManagerProcess, aws_delegate: DelegateRunner,
        tmp_path: Path) -> None:
    ecr = aws.client("ecr")
    uri = ecr.create_repository(repositoryName="myorg/app")["repository"]["repositoryUri"]
    first = _push_ecr(aws, "myorg/app", "1.0.0")
    marker = tmp_path / "fail-the-check"
    marker.write_text("")
    spec = execution(aws, {"source": {"type": "ecr", "repository": "myorg/app"},
                           "tagRegex": r"1\.\d+\.\d+"}, fail_if=marker)
    failed = await _run(api, spec)
    assert [(r["step_id"], r["status"]) for r in failed["runs"]] == [
        ("artifact", "SUCCESS"), ("deploy", "SUCCESS"), ("check", "FAILED")]
    assert failed["runs"][0]["output"]["image"] == f"{uri}@{first}"
    assert _deployed(aws) == (f"{uri}@{first}", {"TAG": "1.0.0", "DIGEST": first})

    newer = _push_ecr(aws, "myorg/app", "1.1.0")
    assert newer != first
    marker.unlink()
    # As a user does it: `delegate execution rerun ID --follow` (POST .../rerun).
    rerun = await asyncio.to_thread(_cli, manager, "execution", "rerun",
                                    failed["execution_id"], "--follow", "-o", "json")
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    again = await api.wait_execution(json.loads(rerun.stdout)["execution_id"])
    assert again["execution_id"] != failed["execution_id"]
    assert again["status"] == "SUCCESS", json.dumps(again)[:2000]
    assert [r["step_id"] for r in again["runs"]] == ["deploy", "check"]
    assert _deployed(aws) == (f"{uri}@{first}", {"TAG": "1.0.0", "DIGEST": first})

    fresh = await _run(api, spec)  # a new execution looks again and finds the newer tag
    assert fresh["status"] == "SUCCESS"
    assert _deployed(aws) == (f"{uri}@{newer}", {"TAG": "1.1.0", "DIGEST": newer})


async def test_a_registry_behind_token_auth_with_a_password_secret(
        aws: Aws, api: ManagerApi, aws_delegate: DelegateRunner,
        docker_registry: reg.Registry) -> None:
    for tag in ("1.9.0", "1.10.0", "2.0.0-rc1"):
        docker_registry.push("team/web", tag)
    want = docker_registry.push("team/web", "1.10.1")
    assert docker_registry.tokens is not None
    source = {"type": "dockerRegistry", "registry": docker_registry.url, "image": "team/web",
              "username": docker_registry.tokens.username, "passwordSecret": "registryPw"}
    done = await _run(api, execution(aws, {"source": source, "tagRegex": r"1\.\d+\.\d+"},
                                     secrets={"registryPw": docker_registry.tokens.password}))
    assert done["status"] == "SUCCESS", json.dumps(done)[:2000]
    host = docker_registry.url.removeprefix("http://")
    assert _deployed(aws) == (f"{host}/team/web@{want}", {"TAG": "1.10.1", "DIGEST": want})
    logs = json.dumps(await api.logs(done["runs"][0]["task_id"]))
    assert docker_registry.tokens.password not in logs


def _cli(manager: ManagerProcess, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    full = {**os.environ, "MANAGER_HOST_AND_PORT": manager.url,
            "MANAGER_ADMIN_TOKEN": ADMIN_TOKEN, **env}
    return subprocess.run([sys.executable, "-m", "cli", *args], capture_output=True,
                          text=True, env=full, timeout=60)


async def test_artifacts_tags_lists_what_a_delegate_sees_in_seconds(
        aws: Aws, manager: ManagerProcess, aws_delegate: DelegateRunner,
        docker_registry: reg.Registry) -> None:
    aws.client("ecr").create_repository(repositoryName="myorg/app")
    digests = [_push_ecr(aws, "myorg/app", tag) for tag in ("1.0.0", "1.1.0")]
    assert digests[0] != digests[1]
    started = time.monotonic()
    out = await asyncio.to_thread(_cli, manager, "artifacts", "tags", "ecr:myorg/app",
                                  "--selector", "ecs")
    took = time.monotonic() - started
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == [f"1.0.0  {digests[0]}", f"1.1.0  {digests[1]}"]
    assert took < 10, f"took {took:.1f}s"

    docker_registry.push("team/web", "2.0.0")
    assert docker_registry.tokens is not None
    source = f"{docker_registry.url}/team/web"
    ok = await asyncio.to_thread(_cli, manager, "artifacts", "tags", source, "--selector",
                                 "ecs", "--username", docker_registry.tokens.username,
                                 REGISTRY_PASSWORD=docker_registry.tokens.password)
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.splitlines() == ["2.0.0"]
    refused = await asyncio.to_thread(_cli, manager, "artifacts", "tags", source,
                                      "--selector", "ecs", "--username", "deployer",
                                      REGISTRY_PASSWORD="not-it")
    assert refused.returncode != 0
    assert "token service refused user deployer (401)" in refused.stderr
    assert "not-it" not in refused.stderr + refused.stdout
