"""``delegate apply -f``, ``delegate definitions list|show|diff|delete`` and ``delegate
execution render`` as a user runs them, against a real manager process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import yaml

from testkit.stack import ADMIN_TOKEN, ManagerProcess

SERVICE = """\
kind: Service
name: myapp
spec:
  manifests:
    taskDefinition: {store: inline, content: {family: myapp}}
    serviceDefinition: {store: inline, content: {serviceName: myapp, desiredCount: 1}}
  variables: {LOG_LEVEL: info}
"""
ENVIRONMENTS = """\
kind: Environment
name: production
spec: {type: Production, variables: {LOG_LEVEL: warn}}
---
kind: Infrastructure
name: prod-east
spec: {environment: production, region: us-east-1, cluster: prod}
---
kind: Override
name: production-myapp
spec:
  service: myapp
  environment: production
  manifests:
    serviceDefinition: {store: inline, content: {serviceName: myapp, desiredCount: 3}}
"""


def cli(manager: ManagerProcess, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "MANAGER_HOST_AND_PORT": manager.url,
           "MANAGER_ADMIN_TOKEN": ADMIN_TOKEN, "ACCOUNT_ID": "acme"}
    return subprocess.run([sys.executable, "-m", "cli", *args], capture_output=True,
                          text=True, env=env, timeout=60)


def _folder(tmp_path: Path) -> Path:
    folder = tmp_path / "defs"
    folder.mkdir()
    (folder / "service.yaml").write_text(SERVICE)
    (folder / "environments.yaml").write_text(ENVIRONMENTS)
    return folder


def test_apply_a_folder_twice_then_diff_show_list_and_delete(manager: ManagerProcess,
                                                             tmp_path: Path) -> None:
    folder = _folder(tmp_path)
    first = cli(manager, "apply", "-f", str(folder))
    assert first.returncode == 0, first.stderr
    # Files in name order: environments.yaml before service.yaml.
    assert first.stdout.splitlines() == [
        "environment/production created (revision 1)",
        "infrastructure/prod-east created (revision 1)",
        "override/production-myapp created (revision 1)",
        "service/myapp created (revision 1)"]
    second = cli(manager, "apply", "-f", str(folder))
    assert [line.split()[1] for line in second.stdout.splitlines()] == ["unchanged"] * 4
    (folder / "service.yaml").write_text(SERVICE.replace("LOG_LEVEL: info", "LOG_LEVEL: debug"))
    diff = cli(manager, "definitions", "diff", "-f", str(folder / "service.yaml"))
    assert diff.returncode == 0, diff.stderr
    assert "service/myapp would be updated:" in diff.stdout
    assert "-  LOG_LEVEL: info" in diff.stdout and "+  LOG_LEVEL: debug" in diff.stdout
    cli(manager, "apply", "-f", str(folder / "service.yaml"))
    shown = cli(manager, "definitions", "show", "service", "myapp")
    assert "service/myapp revision 2" in shown.stdout.lower()
    assert "revisions: 1, 2" in shown.stdout
    listed = json.loads(cli(manager, "definitions", "list", "-o", "json").stdout)
    assert sorted((d["kind"], d["revision"]) for d in listed["definitions"]) == [
        ("Environment", 1), ("Infrastructure", 1), ("Override", 1), ("Service", 2)]
    deleted = cli(manager, "definitions", "delete", "override", "production-myapp")
    assert deleted.stdout.strip() == "override/production-myapp deleted"
    missing = cli(manager, "definitions", "delete", "override", "production-myapp")
    assert missing.returncode == 2 and "no Override production-myapp" in missing.stderr


def test_render_says_where_each_manifest_and_variable_came_from(manager: ManagerProcess,
                                                                tmp_path: Path) -> None:
    folder = _folder(tmp_path)
    assert cli(manager, "apply", "-f", str(folder)).returncode == 0
    execution = tmp_path / "deploy.yaml"
    execution.write_text(yaml.safe_dump({
        "name": "deploy myapp", "service": "myapp", "environment": "production",
        "steps": [{"id": "deploy", "type": "ecs.rolling_deploy"}]}))
    out = cli(manager, "execution", "render", str(execution))
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == [
        "service myapp to environment production, infrastructure prod-east "
        "(us-east-1/prod)",
        "definitions: service/myapp@1, environment/production@1, "
        "infrastructure/prod-east@1, override/production-myapp@1",
        "manifests:",
        "  taskDefinition: from service myapp revision 1",
        "  serviceDefinition: from override production-myapp (environment production) "
        "revision 1",
        "variables:",
        '  LOG_LEVEL = "warn"  (from environment production revision 1)']


def test_a_bad_document_is_one_line_naming_the_file(manager: ManagerProcess,
                                                    tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("kind: Infrastructure\nname: x\nspec: {region: us-east-1}\n")
    out = cli(manager, "apply", "-f", str(bad))
    assert out.returncode == 2
    assert out.stderr.strip().endswith(
        f"{bad} (Infrastructure x): spec.environment: Field required")
    assert "Traceback" not in out.stderr
