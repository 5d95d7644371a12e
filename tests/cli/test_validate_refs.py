"""``delegate validate --definitions DIR`` on an execution by reference: offline, the
effective manifests and variables are those the manager would compute, shown with where
each came from, and the steps are checked with them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import yaml

from tests.cli.test_apply import ENVIRONMENTS

SERVICE = """\
kind: Service
name: myapp
spec:
  manifests:
    taskDefinition:
      store: inline
      content:
        family: myapp
        memory: "512"
        containerDefinitions:
          - name: app
            image: <+primary.artifact.image>
            environment: [{name: LOG_LEVEL, value: <+serviceVariables.LOG_LEVEL>}]
    serviceDefinition: {store: inline, content: {serviceName: myapp, desiredCount: 1}}
  variables: {LOG_LEVEL: info}
"""


def validate(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "cli", "validate", *args],
                          capture_output=True, text=True, timeout=60)


def _files(tmp_path: Path) -> tuple[Path, Path]:
    folder = tmp_path / "defs"
    folder.mkdir()
    (folder / "service.yaml").write_text(SERVICE)
    (folder / "environments.yaml").write_text(ENVIRONMENTS)
    execution = tmp_path / "deploy.yaml"
    execution.write_text(yaml.safe_dump({
        "name": "deploy", "service": "myapp", "environment": "production",
        "artifact": {"image": "nginx:1.27"},
        "steps": [{"id": "deploy", "type": "ecs.rolling_deploy"}]}))
    return folder, execution


def test_offline_effective_inputs_and_the_requests_they_make(tmp_path: Path) -> None:
    folder, execution = _files(tmp_path)
    out = validate("--definitions", str(folder), str(execution))
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    assert report["effective"]["manifests"]["serviceDefinition"]["from"] == \
        "override production-myapp (environment production) revision 0"
    assert report["effective"]["variables"]["LOG_LEVEL"] == {
        "value": "warn", "from": "environment production revision 0"}
    requests = report["steps"]["deploy"]["requests"]
    assert requests["CreateService"]["desiredCount"] == 3
    assert requests["CreateService"]["cluster"] == "prod"
    container = requests["RegisterTaskDefinition"]["containerDefinitions"][0]
    assert container["environment"] == [{"name": "LOG_LEVEL", "value": "warn"}]
    assert container["image"] == "nginx:1.27"


def test_without_definitions_it_says_how_to_check_it(tmp_path: Path) -> None:
    _, execution = _files(tmp_path)
    out = validate(str(execution))
    assert out.returncode == 1
    assert "pass --definitions DIR" in out.stderr and "Traceback" not in out.stderr


def test_a_name_not_in_the_folder_is_named(tmp_path: Path) -> None:
    folder, execution = _files(tmp_path)
    doc = yaml.safe_load(execution.read_text())
    execution.write_text(yaml.safe_dump({**doc, "environment": "staging"}))
    out = validate("-d", str(folder), str(execution))
    assert out.returncode == 1
    assert "no Environment named 'staging' is stored (stored: production)" in out.stderr


def test_an_artifact_source_prints_what_will_be_looked_up(tmp_path: Path) -> None:
    folder, execution = _files(tmp_path)
    doc = yaml.safe_load(execution.read_text())
    doc["artifact"] = {"source": {"type": "ecr", "repository": "myorg/app"}, "tag": "1.2.3"}
    doc["infrastructure"] = "prod-east"
    execution.write_text(yaml.safe_dump(doc))
    out = validate("-d", str(folder), str(execution))
    assert out.returncode == 0, out.stderr
    container = json.loads(out.stdout)["steps"]["deploy"]["requests"][
        "RegisterTaskDefinition"]["containerDefinitions"][0]
    assert container["image"] == "(ecr myorg/app:1.2.3, pinned to its digest at run time)"
