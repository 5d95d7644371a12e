"""The install artefacts: Dockerfile, deploy/ (ECS, IAM, CloudFormation, compose) and
docs/permissions.md are linted by the real tools, validated against botocore's request
shapes, and checked against each other so they cannot drift apart."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import botocore.session
import pytest
import yaml
from botocore.validate import ParamValidator

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
DOCKERFILE = ROOT / "Dockerfile"
TASK_DEFINITION = DEPLOY / "ecs" / "task-definition.json"
SERVICE_DEFINITION = DEPLOY / "ecs" / "service-definition.json"
TASK_ROLE_POLICY = DEPLOY / "iam" / "task-role-policy.json"
EXECUTION_ROLE_POLICY = DEPLOY / "iam" / "task-execution-role-policy.json"
TRUST_POLICY = DEPLOY / "iam" / "ecs-tasks-trust-policy.json"
TEMPLATE = DEPLOY / "cloudformation" / "ecs-delegate.yaml"
COMPOSE = DEPLOY / "docker-compose.yml"
PERMISSIONS_DOC = ROOT / "docs" / "permissions.md"

STEP_TYPES = {
    "aws.validate_connector",
    "ecs.rolling_deploy",
    "ecs.rolling_rollback",
    "ecs.canary_deploy",
    "ecs.canary_delete",
    "ecs.blue_green_create_service",
    "ecs.blue_green_swap_target_groups",
    "ecs.blue_green_rollback",
    "ecs.run_task",
}
ACTION = re.compile(r"`([a-z0-9-]+:[A-Za-z]+)`")
HEALTH_PATH = "/healthz"
STOP_TIMEOUT = 120  # Fargate's maximum; the drain is planned around it.


def _tool(name: str) -> str:
    """The executable installed next to this interpreter (the venv), else on PATH."""
    beside = Path(sys.executable).parent / name
    if beside.exists():
        return str(beside)
    found = shutil.which(name)
    if found is None:
        pytest.fail(f"{name} is not installed: `pip install -e '.[dev]'` provides it")
    return found


def _run(cmd: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=False, **kwargs)


def _json(path: Path) -> Any:
    return json.loads(path.read_text())


class _CfnLoader(yaml.SafeLoader):
    """Reads CloudFormation's short-form tags (!Ref, !Sub, ...) as {tag: value}."""


def _cfn_tag(loader: _CfnLoader, suffix: str, node: yaml.Node) -> dict[str, Any]:
    value: Any
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        assert isinstance(node, yaml.MappingNode)
        value = loader.construct_mapping(node, deep=True)
    return {suffix: value}


_CfnLoader.add_multi_constructor("!", _cfn_tag)


def _template() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.load(TEMPLATE.read_text(), Loader=_CfnLoader)
    return loaded


def _policy_actions(statements: list[Any]) -> set[str]:
    actions: set[str] = set()
    for statement in statements:
        if "If" in statement:  # !If [condition, statement, !Ref AWS::NoValue]
            statement = statement["If"][1]
        declared = statement["Action"]
        actions.update([declared] if isinstance(declared, str) else declared)
    return actions


def _doc_section(title: str) -> str:
    text = PERMISSIONS_DOC.read_text()
    start = text.index(f"## {title}\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end != -1 else len(text)]


def _table_rows(section: str) -> Iterator[list[str]]:
    for line in section.splitlines():
        if line.startswith("| `"):
            yield [cell.strip() for cell in line.strip().strip("|").split("|")]


def _container(task_definition: dict[str, Any]) -> dict[str, Any]:
    (container,) = task_definition["containerDefinitions"]
    assert isinstance(container, dict)
    return container


def _dockerfile_volumes() -> list[str]:
    match = re.search(r"^VOLUME\s+(\[.*\])\s*$", DOCKERFILE.read_text(), re.MULTILINE)
    assert match, "Dockerfile declares no VOLUME"
    volumes: list[str] = json.loads(match.group(1))
    return volumes


def _compose_cmd() -> list[str]:
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    if shutil.which("docker") and _run(["docker", "compose", "version"]).returncode == 0:
        return ["docker", "compose"]
    pytest.skip(
        "neither docker-compose nor the docker compose plugin is installed "
        "(Debian: apt-get install docker-compose; .ci/run installs it)"
    )


# ---- linters --------------------------------------------------------------------------------


def test_dockerfile_is_hadolint_clean() -> None:
    result = _run([_tool("hadolint"), "--no-color", str(DOCKERFILE)])
    assert result.returncode == 0, result.stdout + result.stderr


def test_cloudformation_template_is_cfn_lint_clean() -> None:
    result = _run([_tool("cfn-lint"), str(TEMPLATE)])
    assert result.returncode == 0, result.stdout + result.stderr


def _compose_config(tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    # An empty env file and a scrubbed environment: a developer's deploy/.env must not
    # make the check pass or fail.
    empty_env_file = tmp_path / "empty.env"
    empty_env_file.write_text("")
    environ = {k: v for k, v in os.environ.items() if k != "MANAGER_ADMIN_TOKEN"}
    environ.update(env)
    return _run(
        [*_compose_cmd(), "--env-file", str(empty_env_file), "-f", str(COMPOSE), "config", "-q"],
        cwd=DEPLOY,
        env=environ,
    )


def test_compose_file_is_valid(tmp_path: Path) -> None:
    result = _compose_config(tmp_path, MANAGER_ADMIN_TOKEN="compose-check")
    assert result.returncode == 0, result.stdout + result.stderr


def test_compose_file_refuses_to_start_without_admin_token(tmp_path: Path) -> None:
    result = _compose_config(tmp_path)
    assert result.returncode != 0
    assert "MANAGER_ADMIN_TOKEN" in result.stderr


# ---- botocore request shapes ----------------------------------------------------------------


def _validate(operation: str, params: dict[str, Any]) -> None:
    model = botocore.session.get_session().get_service_model("ecs")
    shape = model.operation_model(operation).input_shape
    report = ParamValidator().validate(params, shape)
    assert not report.has_errors(), report.generate_report()


def test_task_definition_is_a_valid_register_task_definition_request() -> None:
    _validate("RegisterTaskDefinition", _json(TASK_DEFINITION))


def test_service_definition_is_a_valid_create_service_request() -> None:
    params = _json(SERVICE_DEFINITION)
    params.setdefault("cluster", "ecs-delegate-cluster")
    params.setdefault("taskDefinition", "ecs-delegate")
    _validate("CreateService", params)


def test_service_rolls_back_a_failed_delegate_upgrade() -> None:
    service = _json(SERVICE_DEFINITION)
    assert service["launchType"] == "FARGATE"
    assert service["deploymentConfiguration"]["deploymentCircuitBreaker"] == {
        "enable": True,
        "rollback": True,
    }
    assert service["enableECSManagedTags"] is True
    assert service["propagateTags"] in {"SERVICE", "TASK_DEFINITION"}


# ---- the token, the stop timeout, the read-only filesystem ----------------------------------


def test_token_comes_from_secrets_manager_never_the_environment() -> None:
    container = _container(_json(TASK_DEFINITION))
    names = {entry["name"] for entry in container["environment"]}
    assert "DELEGATE_TOKEN" not in names
    (secret,) = [s for s in container["secrets"] if s["name"] == "DELEGATE_TOKEN"]
    assert secret["valueFrom"].startswith("arn:aws:secretsmanager:")

    cfn_container = _template()["Resources"]["TaskDefinition"]["Properties"][
        "ContainerDefinitions"
    ][0]
    assert "DELEGATE_TOKEN" not in {entry["Name"] for entry in cfn_container["Environment"]}
    assert cfn_container["Secrets"] == [
        {"Name": "DELEGATE_TOKEN", "ValueFrom": {"Ref": "TokenSecretArn"}}
    ]

    compose = yaml.safe_load(COMPOSE.read_text())
    delegate = compose["services"]["delegate"]
    assert "DELEGATE_TOKEN" not in delegate["environment"]
    assert delegate["environment"]["DELEGATE_TOKEN_FILE"] == "/run/secrets/delegate_token"
    assert delegate["secrets"] == ["delegate_token"]


def test_stop_timeout_is_fargates_maximum() -> None:
    assert _container(_json(TASK_DEFINITION))["stopTimeout"] == STOP_TIMEOUT
    cfn_container = _template()["Resources"]["TaskDefinition"]["Properties"][
        "ContainerDefinitions"
    ][0]
    assert cfn_container["StopTimeout"] == STOP_TIMEOUT
    compose = yaml.safe_load(COMPOSE.read_text())
    assert compose["services"]["delegate"]["stop_grace_period"] == f"{STOP_TIMEOUT}s"


def test_only_the_dockerfiles_volumes_are_writable_everywhere() -> None:
    volumes = set(_dockerfile_volumes())
    assert volumes == {"/tmp", "/var/lib/ecs-delegate"}

    container = _container(_json(TASK_DEFINITION))
    assert container["readonlyRootFilesystem"] is True
    assert {m["containerPath"] for m in container["mountPoints"]} == volumes

    cfn_container = _template()["Resources"]["TaskDefinition"]["Properties"][
        "ContainerDefinitions"
    ][0]
    assert cfn_container["ReadonlyRootFilesystem"] is True
    assert {m["ContainerPath"] for m in cfn_container["MountPoints"]} == volumes

    compose = yaml.safe_load(COMPOSE.read_text())
    for name, service in compose["services"].items():
        assert service["read_only"] is True, name
        assert service["init"] is True, name
        writable = {entry.split(":")[0] for entry in service.get("tmpfs", [])}
        writable |= {entry.split(":")[1] for entry in service.get("volumes", [])}
        assert writable == volumes, name


def test_environment_matches_across_task_definition_and_template() -> None:
    task_env = {e["name"] for e in _container(_json(TASK_DEFINITION))["environment"]}
    cfn_env = {
        e["Name"]
        for e in _template()["Resources"]["TaskDefinition"]["Properties"]["ContainerDefinitions"][
            0
        ]["Environment"]
    }
    required = {
        "ACCOUNT_ID",
        "DELEGATE_NAME",
        "DELEGATE_TAGS",
        "MANAGER_HOST_AND_PORT",
        "LOG_STREAMING_SERVICE_URL",
        "INIT_SCRIPT",
        "AWS_REGION",
        "HEALTH_PORT",
    }
    assert required <= task_env
    assert task_env == cfn_env


def test_health_checks_probe_the_delegates_health_endpoint() -> None:
    dockerfile = DOCKERFILE.read_text()
    assert re.search(r"^HEALTHCHECK .*\\\n\s+CMD \[.*" + HEALTH_PATH, dockerfile, re.MULTILINE)
    assert re.search(r'^ENTRYPOINT \["/usr/bin/tini", "--", "delegate"\]$', dockerfile, re.M)
    assert re.search(r"^USER 10001:10001$", dockerfile, re.MULTILINE)

    command = _container(_json(TASK_DEFINITION))["healthCheck"]["command"]
    assert command[0] == "CMD" and HEALTH_PATH in command[-1]
    cfn_container = _template()["Resources"]["TaskDefinition"]["Properties"][
        "ContainerDefinitions"
    ][0]
    assert cfn_container["HealthCheck"]["Command"] == command
    compose = yaml.safe_load(COMPOSE.read_text())
    assert compose["services"]["delegate"]["healthcheck"]["test"] == command


def test_image_contains_every_package_the_wheel_is_made_of() -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    packages = {
        pattern.rstrip("*")
        for pattern in pyproject["tool"]["setuptools"]["packages"]["find"]["include"]
    }
    dockerfile = DOCKERFILE.read_text()
    allowed = set((ROOT / ".dockerignore").read_text().split())
    for package in packages:
        assert f"COPY {package}/ {package}/" in dockerfile, package
        assert f"!{package}/" in allowed, package


# ---- IAM ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path", [TASK_ROLE_POLICY, EXECUTION_ROLE_POLICY, TRUST_POLICY], ids=lambda p: p.name
)
def test_policies_are_well_formed(path: Path) -> None:
    policy = _json(path)
    assert policy["Version"] == "2012-10-17"
    for statement in policy["Statement"]:
        assert statement["Effect"] == "Allow"
        assert statement.get("Sid"), statement
        actions = statement["Action"]
        for action in [actions] if isinstance(actions, str) else actions:
            assert re.fullmatch(r"[a-z0-9-]+:[A-Za-z]+", action), action


def test_pass_role_is_limited_to_ecs_tasks() -> None:
    (statement,) = [
        s for s in _json(TASK_ROLE_POLICY)["Statement"] if s["Action"] == "iam:PassRole"
    ]
    assert statement["Condition"] == {
        "StringEquals": {"iam:PassedToService": "ecs-tasks.amazonaws.com"}
    }


def test_permissions_doc_lists_exactly_the_task_role_actions() -> None:
    section = _doc_section("Task role")
    documented = [ACTION.findall(row[0]) for row in _table_rows(section)]
    flat = [action for row in documented for action in row]
    assert len(flat) == len(set(flat)), "an action is documented twice"
    policy = _policy_actions(_json(TASK_ROLE_POLICY)["Statement"])
    assert set(flat) - policy == set(), "documented but not granted"
    assert policy - set(flat) == set(), "granted but not documented"


def test_permissions_doc_names_only_real_step_types() -> None:
    for row in _table_rows(_doc_section("Task role")):
        used_by = set(re.findall(r"`((?:aws|ecs)\.[a-z_]+)`", row[1]))
        assert used_by <= STEP_TYPES, (row[0], used_by - STEP_TYPES)
    # Every step type needs at least one permission, so each must appear.
    mentioned = set(re.findall(r"`((?:aws|ecs)\.[a-z_]+)`", _doc_section("Task role")))
    assert mentioned == STEP_TYPES


def test_permissions_doc_lists_exactly_the_execution_role_actions() -> None:
    documented = {
        action
        for row in _table_rows(_doc_section("Task execution role"))
        for action in ACTION.findall(row[0])
    }
    assert documented == _policy_actions(_json(EXECUTION_ROLE_POLICY)["Statement"])


def test_template_grants_the_same_actions_as_deploy_iam() -> None:
    resources = _template()["Resources"]

    def role_actions(name: str) -> set[str]:
        (policy,) = resources[name]["Properties"]["Policies"]
        return _policy_actions(policy["PolicyDocument"]["Statement"])

    assert role_actions("TaskRole") == _policy_actions(_json(TASK_ROLE_POLICY)["Statement"])
    assert role_actions("ExecutionRole") == _policy_actions(
        _json(EXECUTION_ROLE_POLICY)["Statement"]
    )
