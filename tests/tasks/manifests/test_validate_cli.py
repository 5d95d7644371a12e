from __future__ import annotations

import json
from pathlib import Path

import yaml
from click.testing import CliRunner

from cli.validate import validate

from .conftest import data


def layout(tmp_path: Path) -> Path:
    """Manifests as a user keeps them next to the file: the store's folder mirrored, or
    flat beside it."""
    folder = tmp_path / "ECS Tutorial"
    folder.mkdir()
    (folder / "RegisterTaskDefinitionRequest.yaml").write_bytes(
        data("RegisterTaskDefinitionRequest.yaml"))
    (folder / "CreateServiceRequest.yaml").write_bytes(data("CreateServiceRequest.yaml"))
    (tmp_path / "ScalableTarget.yaml").write_bytes(data("ScalableTarget.yaml"))
    (tmp_path / "ScalingPolicy.yaml").write_bytes(data("ScalingPolicy.yaml"))
    (tmp_path / "CreateServiceRequest.json").write_bytes(data("CreateServiceRequest.invalid.json"))
    return tmp_path


MANIFESTS = {
    "taskDefinition": {"store": "files",
                       "paths": ["account:/ECS Tutorial/RegisterTaskDefinitionRequest.yaml"]},
    "serviceDefinition": {"store": "files",
                          "paths": ["account:/ECS Tutorial/CreateServiceRequest.yaml"]},
    "scalableTargets": [{"store": "files", "paths": ["account:/ECS Tutorial/ScalableTarget.yaml"]}],
    "scalingPolicies": [{"store": "files", "paths": ["account:/ECS Tutorial/ScalingPolicy.yaml"]}],
}


def test_task_file_prints_the_final_requests(tmp_path: Path) -> None:
    task = {"type": "ecs.rolling_deploy", "selectors": ["ecs"],
            "params": {"region": "us-west-2", "cluster": "ecs-tutorial",
                       "credentials": {"type": "inherit"}, "manifests": MANIFESTS},
            "context": {"artifact": {"image": "library/nginx:perl"}}}
    path = layout(tmp_path) / "task.yaml"
    path.write_text(yaml.safe_dump(task))
    result = CliRunner().invoke(validate, [str(path)])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    requests = report["steps"]["task"]["requests"]
    td = requests["RegisterTaskDefinition"]
    assert td["containerDefinitions"][0]["image"] == "library/nginx:perl"
    assert requests["CreateService"]["cluster"] == "ecs-tutorial"
    assert requests["CreateService"]["serviceName"] == "myapp"
    assert requests["UpdateService"]["service"] == "myapp"
    assert "launchType" not in requests["UpdateService"]
    assert requests["RegisterScalableTarget"][0]["ResourceId"] == "service/ecs-tutorial/myapp"
    assert requests["PutScalingPolicy"][0]["PolicyName"] == "P1"
    assert "is valid" in result.stderr


def test_execution_file_renders_context_and_keeps_runtime_values(tmp_path: Path) -> None:
    execution = {
        "name": "deploy myapp",
        "infrastructure": {"region": "us-west-2", "cluster": "ecs-tutorial",
                           "credentials": {"type": "inherit"}},
        "service": "myapp",
        "artifact": {"image": "library/nginx:1.27"},
        "serviceVariables": {"replicas": 2},
        "steps": [
            {"id": "deploy", "type": "ecs.rolling_deploy", "params": {
                "region": "<+infra.region>", "cluster": "<+infra.cluster>",
                "manifests": {**MANIFESTS, "serviceDefinition": {"store": "inline", "content": {
                    "serviceName": "myapp", "desiredCount": "<+serviceVariables.replicas>",
                    # ECS refuses an awsvpc service without subnets (ecs_rules).
                    "networkConfiguration": {"awsvpcConfiguration": {"subnets": ["subnet-1"]}},
                    "tags": [{"key": "db", "value": '<+secrets.getValue("dbPassword")>'}]}}}}},
            {"id": "task", "type": "ecs.run_task", "params": {"manifests": {
                "taskDefinition": {"taskDefinitionArn":
                                   "<+execution.steps.deploy.output.taskDefinitionArn>"},
                "runTaskRequest": {"store": "inline", "content": data("RunTaskRequest.yaml")
                                   .decode()}}}},
        ],
        "rollbackSteps": [{"id": "rollback", "type": "ecs.rolling_rollback", "rollsBack": "deploy",
                           "params": {"rollbackData":
                                      "<+execution.steps.deploy.output.rollbackData>"}}],
    }
    path = layout(tmp_path) / "execution.json"
    path.write_text(json.dumps(execution))
    result = CliRunner().invoke(validate, [str(path)])
    assert result.exit_code == 0, result.output
    steps = json.loads(result.stdout)["steps"]
    create = steps["deploy"]["requests"]["CreateService"]
    assert create["desiredCount"] == 2 and create["cluster"] == "ecs-tutorial"
    assert create["tags"][0]["value"] == '<+secrets.getValue("dbPassword")>'
    run = steps["task"]["requests"]["RunTask"]
    assert run["taskDefinition"] == "<+execution.steps.deploy.output.taskDefinitionArn>"
    assert run["cluster"] == "ecs-tutorial" and run["count"] == 1
    assert steps["rollback"]["notes"] == ["no manifests in this step's params"]


def test_invalid_manifests_exit_1_with_located_errors(tmp_path: Path) -> None:
    manifests = {**MANIFESTS, "serviceDefinition": {
        "store": "files", "paths": ["account:/ECS Tutorial/CreateServiceRequest.json"]}}
    task = {"type": "ecs.rolling_deploy",
            "params": {"region": "us-west-2", "cluster": "c", "manifests": manifests}}
    path = layout(tmp_path) / "task.yaml"
    path.write_text(yaml.safe_dump(task))
    result = CliRunner().invoke(validate, [str(path)])
    assert result.exit_code == 1
    assert ("error: account:/ECS Tutorial/CreateServiceRequest.json:3:20: not valid JSON"
            in result.stderr)
    # the image has no context: an unresolved expression, with its file and line
    assert ("account:/ECS Tutorial/RegisterTaskDefinitionRequest.yaml:26: "
            "containerDefinitions[0].image: expression <+primary.artifact.image>"
            in result.stderr)


def test_missing_local_file_and_bad_params(tmp_path: Path) -> None:
    task = {"type": "ecs.rolling_deploy", "params": {"region": "r", "cluster": "c", "manifests": {
        "taskDefinition": {"store": "files", "paths": ["account:/nowhere/x.yaml"]},
        "serviceDefinition": {"store": "files", "paths": ["account:/../../etc/passwd"]}}}}
    path = tmp_path / "task.yaml"
    path.write_text(yaml.safe_dump(task))
    result = CliRunner().invoke(validate, [str(path)])
    assert result.exit_code == 1
    assert "account:/nowhere/x.yaml: no local copy; looked for" in result.stderr
    task["params"]["manifests"] = {"taskDefinition": {"store": "ftp"}}  # type: ignore[index]
    path.write_text(yaml.safe_dump(task))
    result = CliRunner().invoke(validate, [str(path)])
    assert result.exit_code == 1
    assert "task.params.manifests.taskDefinition" in result.stderr


def test_not_a_task_or_execution_file(tmp_path: Path) -> None:
    path = tmp_path / "x.yaml"
    path.write_text("family: web\n")
    result = CliRunner().invoke(validate, [str(path)])
    assert result.exit_code == 1
    assert "neither a task file" in result.stderr
