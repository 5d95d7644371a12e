"""`delegate validate` and `delegate submit` flag an unreplaced example placeholder with
its file and line (issue 17), and the demo's files, once `delegate demo` has filled them,
pass every check including ECS's service-side rules (issue 16)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from cli.exitcodes import ExitCode
from cli.main import cli
from cli.validate import validate

DEMO = Path(__file__).resolve().parents[2] / "cli" / "demo_files"
# What `delegate demo` puts in the slots (cli/demo.py), in the sandbox's shape.
FILLED = {
    "<Subnet Id>": "subnet-0123456789abcdef0",
    "<Security Group Id>": "sg-0123456789abcdef0",
    "<Load Balancer>": "myapp-alb",
    "<Prod Listener ARN>": "arn:aws:elasticloadbalancing:us-east-1:123456789012:listener/"
                           "app/myapp-alb/50dc6c495c0c9188/f2f7dc8efc522ab2",
    "<Stage Listener ARN>": "arn:aws:elasticloadbalancing:us-east-1:123456789012:listener/"
                            "app/myapp-alb/50dc6c495c0c9188/0467ef3c8400ae65",
}
RUNNABLE = ["rolling-execution.yaml", "canary-execution.yaml", "bluegreen-execution.yaml",
            "provisioned-execution.yaml",
            "migration-task.yaml"]


def demo_copy(tmp_path: Path, *, fill: bool) -> Path:
    for source in DEMO.iterdir():
        text = source.read_text()
        if fill:
            for slot, value in FILLED.items():
                text = text.replace(slot, value)
        (tmp_path / source.name).write_text(text)
    return tmp_path


@pytest.mark.parametrize("name", RUNNABLE)
def test_filled_demo_files_validate_clean(tmp_path: Path, name: str) -> None:
    folder = demo_copy(tmp_path, fill=True)
    result = CliRunner().invoke(validate, [str(folder / name)])
    assert result.exit_code == 0, result.output
    assert "is valid" in result.stderr


def test_demo_files_as_shipped_name_each_placeholder_file_and_line(tmp_path: Path) -> None:
    folder = demo_copy(tmp_path, fill=False)
    result = CliRunner().invoke(validate, [str(folder / "bluegreen-execution.yaml")])
    assert result.exit_code == 1
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    execution = str(folder / "bluegreen-execution.yaml")
    assert any(e.startswith(f"error: {execution}:17: steps[0].params.loadBalancer: "
                            "<Load Balancer> is a placeholder") for e in errors), errors
    assert any(e.startswith(f"error: {execution}:18: ") and "<Prod Listener ARN>" in e
               for e in errors)
    assert any(e.startswith("error: account:/ECS Tutorial/BlueGreenServiceRequest.yaml:12: ")
               and "<Subnet Id>" in e and "`delegate sandbox`" in e for e in errors), errors
    assert "Traceback" not in result.output


def test_submit_refuses_a_placeholder_before_contacting_the_manager(tmp_path: Path) -> None:
    folder = demo_copy(tmp_path, fill=False)
    # Port 9 (discard) has no manager: reaching it would end in "unreachable" (7).
    result = CliRunner().invoke(cli, ["submit", str(folder / "bluegreen-execution.yaml"),
                                      "--manager", "http://127.0.0.1:9"],
                                env={"MANAGER_ADMIN_TOKEN": "t", "ACCOUNT_ID": "a"})
    assert result.exit_code == ExitCode.USAGE, result.output
    assert f"{folder / 'bluegreen-execution.yaml'}:17: steps[0].params.loadBalancer: " \
           "<Load Balancer> is a placeholder" in result.output
    assert "your AWS account" in result.output and "Traceback" not in result.output


def test_submit_of_a_file_without_placeholders_goes_on_to_the_manager(tmp_path: Path) -> None:
    folder = demo_copy(tmp_path, fill=True)
    shutil.copy(folder / "rolling-execution.yaml", tmp_path / "run.yaml")
    result = CliRunner().invoke(cli, ["submit", str(tmp_path / "run.yaml"),
                                      "--manager", "http://127.0.0.1:9"],
                                env={"MANAGER_ADMIN_TOKEN": "t", "ACCOUNT_ID": "a"})
    assert result.exit_code == ExitCode.UNREACHABLE, result.output


def test_a_placeholder_in_an_inline_manifest_is_reported_once(tmp_path: Path) -> None:
    folder = demo_copy(tmp_path, fill=True)
    service = (DEMO / "CreateServiceRequest.yaml").read_text()
    task = folder / "inline.yaml"
    task.write_text(
        "type: ecs.rolling_deploy\nparams:\n  region: us-east-1\n  cluster: c\n"
        "  manifests:\n"
        "    taskDefinition: {store: files, paths: [RegisterTaskDefinitionRequest.yaml]}\n"
        "    serviceDefinition:\n      store: inline\n      content:\n"
        + "".join(f"        {line}\n" for line in service.splitlines()))
    result = CliRunner().invoke(validate, [str(task)])
    assert result.exit_code == 1
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len([e for e in errors if "<Subnet Id>" in e]) == 1, errors
