from __future__ import annotations

from collections.abc import Callable

import pytest
from pydantic import ValidationError

from agent.context import TaskContext
from tasks.manifests import (
    FilesSource,
    InlineSource,
    ManifestError,
    ManifestErrors,
    ManifestSpecs,
    TaskDefinitionArn,
    load_manifests,
)

from .conftest import Recorder, data

FOLDER = "account:/ECS Tutorial/"
CONTEXT = {"artifact": {"image": "library/nginx:perl"}}


def specs(task_definition: str, **more: object) -> ManifestSpecs:
    return ManifestSpecs.model_validate({
        "taskDefinition": {"store": "files", "paths": [FOLDER + task_definition]},
        "serviceDefinition": {"store": "files", "paths": [FOLDER + "CreateServiceRequest.yaml"]},
        "scalableTargets": [{"store": "files", "paths": [FOLDER + "ScalableTarget.yaml"]}],
        "scalingPolicies": [{"store": "files", "paths": [FOLDER + "ScalingPolicy.yaml"]}],
        **more,
    })


def store() -> dict[str, bytes]:
    names = ["RegisterTaskDefinitionRequest.json", "RegisterTaskDefinitionRequest.yaml",
             "CreateServiceRequest.yaml", "ScalableTarget.yaml", "ScalingPolicy.yaml",
             "RunTaskRequest.yaml", "CreateServiceRequest.invalid.json"]
    return {FOLDER + n: data(n) for n in names}


@pytest.mark.parametrize("task_definition", ["RegisterTaskDefinitionRequest.json",
                                             "RegisterTaskDefinitionRequest.yaml"])
async def test_document_examples_load_from_the_file_store(
        make_ctx: Callable[..., TaskContext], recorder: Recorder, task_definition: str) -> None:
    ctx = make_ctx(files=store(), context=CONTEXT)
    async with ctx.log.unit("Fetch Manifests") as log:
        manifests = await load_manifests(specs(task_definition), ctx, None, log,
                                         region="us-west-2", cluster="ecs-tutorial")
    td = manifests.task_definition
    assert td is not None
    assert td["family"] == "fargate-task-definition"
    assert td["containerDefinitions"][0]["image"] == "library/nginx:perl"
    assert td["containerDefinitions"][0]["cpu"] == 0  # a zero is a value, not a null
    assert td["containerDefinitions"][0]["environment"] == []
    assert "ipcMode" not in td and "memory" not in td["containerDefinitions"][0]
    assert manifests.service_definition == {
        "launchType": "FARGATE", "serviceName": "myapp", "desiredCount": 1,
        "networkConfiguration": {"awsvpcConfiguration": {
            "securityGroups": ["sg-0123456789abcdef0"],
            "subnets": ["subnet-0123456789abcdef0"], "assignPublicIp": "ENABLED"}},
        "deploymentConfiguration": {"maximumPercent": 200, "minimumHealthyPercent": 100}}
    assert manifests.scalable_targets == [{
        "ServiceNamespace": "ecs", "ScalableDimension": "ecs:service:DesiredCount",
        "MinCapacity": 1, "MaxCapacity": 3, "ResourceId": "service/ecs-tutorial/myapp"}]
    assert manifests.scaling_policies[0]["ResourceId"] == "service/ecs-tutorial/myapp"
    assert manifests.warnings == []
    lines = recorder.lines()
    at = lines.index("Fetching EcsTaskDefinition from the manager's file store")
    assert lines[at + 1: at + 6] == [
        "", "Fetching following Files :", f"- {FOLDER}{task_definition}",
        "Successfully fetched following files:", f"- {FOLDER}{task_definition}"]
    assert "Fetching EcsServiceDefinition from the manager's file store" in lines
    assert lines[-1] == "Fetched all manifests"


async def test_invalid_json_service_definition_fails_with_line_and_column(
        make_ctx: Callable[..., TaskContext]) -> None:
    spec = specs("RegisterTaskDefinitionRequest.yaml", serviceDefinition={
        "store": "files", "paths": [FOLDER + "CreateServiceRequest.invalid.json"]})
    ctx = make_ctx(files=store(), context=CONTEXT)
    with pytest.raises(ManifestError) as info:
        async with ctx.log.unit("Fetch Manifests") as log:
            await load_manifests(spec, ctx, None, log, region="r", cluster="c")
    assert (info.value.line, info.value.column) == (3, 20)
    assert info.value.file == FOLDER + "CreateServiceRequest.invalid.json"


async def test_problems_in_several_files_are_reported_together(
        make_ctx: Callable[..., TaskContext]) -> None:
    ctx = make_ctx(files=store(), context={})  # no artifact: the image does not resolve
    spec = specs("RegisterTaskDefinitionRequest.yaml", scalingPolicies=[
        {"store": "inline", "content": "policyName: P1\npolicyTyp: StepScaling\n"}])
    with pytest.raises(ManifestErrors) as info:
        async with ctx.log.unit("Fetch Manifests") as log:
            await load_manifests(spec, ctx, None, log, region="r", cluster="c")
    image, policy = info.value.errors
    assert image.file == FOLDER + "RegisterTaskDefinitionRequest.yaml"
    assert image.line == 26 and "<+primary.artifact.image>" in str(image)
    assert policy.file == "inline EcsScalingPolicyDefinition" and policy.line == 2
    assert "policyTyp: unknown field; did you mean PolicyType?" in str(policy)


async def test_missing_store_file_is_a_clear_error(make_ctx: Callable[..., TaskContext]) -> None:
    ctx = make_ctx(files={}, context=CONTEXT)
    with pytest.raises(ManifestError, match="could not fetch it from the manager's file store"):
        async with ctx.log.unit("Fetch Manifests") as log:
            await load_manifests(specs("RegisterTaskDefinitionRequest.yaml"), ctx, None, log,
                                 region="r", cluster="c")


async def test_inline_content_and_task_definition_arn(
        make_ctx: Callable[..., TaskContext], recorder: Recorder) -> None:
    arn = "arn:aws:ecs:us-west-2:123456789012:task-definition/web:7"
    spec = ManifestSpecs.model_validate({
        "taskDefinition": {"taskDefinitionArn": arn},
        "serviceDefinition": {"store": "inline", "content": {
            "serviceName": "web", "desiredCount": None, "taskDefinition": "x",
            "loadBalancers": [{"targetGroupArn": "<+targetGroupArn>", "containerName": "n",
                               "containerPort": 80}]}},
        "runTaskRequest": {"store": "inline", "content": data("RunTaskRequest.yaml").decode()},
    })
    assert isinstance(spec.task_definition, TaskDefinitionArn)
    assert isinstance(spec.service_definition, InlineSource)
    ctx = make_ctx(secrets={})
    async with ctx.log.unit("Fetch Manifests") as log:
        manifests = await load_manifests(spec, ctx, None, log, region="r", cluster="c",
                                         extra_variables={"targetGroupArn": "arn:tg"})
    assert manifests.task_definition_arn == arn and manifests.task_definition is None
    assert manifests.service_definition == {"serviceName": "web", "loadBalancers": [
        {"targetGroupArn": "arn:tg", "containerName": "n", "containerPort": 80}]}
    assert manifests.run_task_request is not None
    assert manifests.run_task_request["count"] == 1
    assert "taskDefinition" not in manifests.run_task_request
    assert any("taskDefinition in the service definition is ignored" in w
               for w in manifests.warnings)
    assert f"Using the registered task definition {arn}" in recorder.lines()


def test_params_shape_errors_are_clear() -> None:
    with pytest.raises(ValidationError, match="store"):
        ManifestSpecs.model_validate({"taskDefinition": {"paths": ["x"]}})
    with pytest.raises(ValidationError):
        ManifestSpecs.model_validate({"serviceDefinition": {"store": "ftp"}})
    with pytest.raises(ValidationError):
        ManifestSpecs.model_validate({"serviceDefinition": {"store": "git", "repo": "--x",
                                                            "ref": "main", "path": "a"}})
    spec = ManifestSpecs.model_validate(
        {"scalableTargets": [{"store": "files", "paths": ["account:/a.yaml"]}]})
    assert spec.scalable_targets == [FilesSource(store="files", paths=["account:/a.yaml"])]
