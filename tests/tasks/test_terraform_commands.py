"""Command lines and params of the Terraform and Terragrunt steps, checked without either
binary: what Terragrunt would be run with is asserted exactly (there is no terragrunt
here), and the params refuse what would escape the task's folder or contradict itself."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from pydantic import ValidationError

from agent.context import TaskRegistry
from tasks.terraform import register
from tasks.terraform.commands import Invocation, RunOptions
from tasks.terraform.config import declares_backend
from tasks.terraform.params import ApplyParams, PlanParams, TerragruntApplyParams
from tasks.terraform.runner import invocation

OPTS = RunOptions(var_files=["/w/configuration/prod.tfvars", "/w/variables.tfvars.json"],
                  targets=["terraform_data.a"], lock_timeout=30)


def test_terraform_apply_and_plan_argv() -> None:
    tf = Invocation("terraform", "/usr/bin/terraform")
    assert tf.apply(OPTS) == [
        "/usr/bin/terraform", "apply", "-input=false", "-no-color", "-auto-approve",
        "-lock-timeout=30s", "-var-file=/w/configuration/prod.tfvars",
        "-var-file=/w/variables.tfvars.json", "-target=terraform_data.a"]
    # A saved plan carries its variables and targets: none are given again.
    assert tf.apply(OPTS, "/w/p.tfplan") == [
        "/usr/bin/terraform", "apply", "-input=false", "-no-color", "-lock-timeout=30s",
        "/w/p.tfplan"]
    assert tf.plan(RunOptions(), "/w/p.tfplan", destroy=True) == [
        "/usr/bin/terraform", "plan", "-input=false", "-no-color", "-detailed-exitcode",
        "-out=/w/p.tfplan", "-lock-timeout=0s", "-destroy"]
    assert tf.init(["/w/backend.hcl"]) == [
        "/usr/bin/terraform", "init", "-input=false", "-no-color",
        "-backend-config=/w/backend.hcl"]
    assert tf.output() == ["/usr/bin/terraform", "output", "-no-color", "-json"]


def test_terragrunt_run_all_argv() -> None:
    tg = Invocation("terragrunt", "/opt/terragrunt", run_all=True, working_directory="live")
    assert tg.apply(OPTS) == [
        "/opt/terragrunt", "run-all", "apply", "--terragrunt-non-interactive",
        "--terragrunt-working-dir", "live", "-input=false", "-no-color", "-auto-approve",
        "-lock-timeout=30s", "-var-file=/w/configuration/prod.tfvars",
        "-var-file=/w/variables.tfvars.json", "-target=terraform_data.a"]
    assert tg.version() == ["/opt/terragrunt", "--version"]
    # One plan per module: no single plan file to save.
    assert tg.plan(RunOptions(), "/w/p.tfplan", destroy=False) == [
        "/opt/terragrunt", "run-all", "plan", "--terragrunt-non-interactive",
        "--terragrunt-working-dir", "live", "-input=false", "-no-color", "-lock-timeout=0s"]
    with pytest.raises(ValidationError, match="a runAll plan is not saved"):
        TerragruntApplyParams.model_validate({"provisionerIdentifier": "n", "runAll": True,
                                              "planStep": "plan"})
    single = Invocation("terragrunt", "terragrunt")
    assert single.destroy(RunOptions()) == [
        "terragrunt", "destroy", "--terragrunt-non-interactive", "-input=false",
        "-no-color", "-auto-approve", "-lock-timeout=0s"]


def test_terragrunt_params_become_its_invocation(tmp_path: Path) -> None:
    fake = tmp_path / "terragrunt"
    fake.write_text("#!/bin/sh\n")
    fake.chmod(0o755)
    params = TerragruntApplyParams.model_validate({
        "provisionerIdentifier": "net", "runAll": True, "workingDirectory": "live/prod",
        "binary": str(fake), "configuration": {"store": "inline", "files": {"a.hcl": ""}}})
    inv = invocation(params, "terragrunt")
    assert (inv.tool, inv.binary, inv.run_all, inv.working_directory) == (
        "terragrunt", str(fake), True, "live/prod")


@pytest.mark.skipif(shutil.which("terragrunt") is None,
                    reason="no terragrunt binary on this machine; its command lines are "
                           "checked above, and everything it shares with Terraform is "
                           "tested through Terraform (tests/e2e/test_terraform.py)")
def test_terragrunt_on_path_is_found() -> None:
    params = TerragruntApplyParams.model_validate({
        "provisionerIdentifier": "net",
        "configuration": {"store": "inline", "files": {"terragrunt.hcl": ""}}})
    assert invocation(params, "terragrunt").binary == shutil.which("terragrunt")


@pytest.mark.parametrize(("params", "message"), [
    ({"configuration": {"store": "inline", "files": {"/etc/x.tf": ""}}},
     "relative path inside the configuration"),
    ({"configuration": {"store": "git", "repo": "r", "ref": "main", "folder": "a/../.."}},
     "relative path inside the configuration"),
    ({"configuration": {"store": "inline", "files": {"a.tf": ""}}, "varFiles": ["../x"]},
     "relative path inside the configuration"),
    ({"environmentVariables": {"AWS_SECRET_ACCESS_KEY": "x"},
      "configuration": {"store": "inline", "files": {"a.tf": ""}}},
     "set by the step from its infrastructure"),
    ({}, "configuration is required"),
])
def test_plan_params_refuse(params: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        PlanParams.model_validate({"provisionerIdentifier": "infra", **params})


def test_apply_of_a_plan_takes_no_variables() -> None:
    with pytest.raises(ValidationError, match="a saved plan carries its variables"):
        ApplyParams.model_validate({"provisionerIdentifier": "i", "planStep": "plan",
                                    "variables": {"a": 1}})
    assert ApplyParams.model_validate({"provisionerIdentifier": "i",
                                       "planStep": "plan"}).plan_step == "plan"


@pytest.mark.parametrize(("text", "declared"), [
    ('terraform {\n  backend "s3" {\n    bucket = "b"\n  }\n}\n', True),
    ('terraform {\n  cloud {\n    organization = "o"\n  }\n}\n', True),
    ('# backend "s3" is what we would use\nresource "terraform_data" "a" {}\n', False),
    ('terraform {\n  required_version = ">= 1.5"\n}\n', False),
])
def test_declares_backend(tmp_path: Path, text: str, declared: bool) -> None:
    (tmp_path / "main.tf").write_text(text)
    assert declares_backend(tmp_path) is declared


def test_a_delegate_without_shell_steps_offers_no_terraform_either(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """local-exec runs any command: the owner's switch for shell steps covers Terraform."""
    monkeypatch.setenv("DELEGATE_SHELL_STEPS", "false")
    registry = TaskRegistry()
    register(registry)
    assert registry.names() == []
    monkeypatch.setenv("DELEGATE_SHELL_STEPS", "true")
    register(registry)
    assert {"terraform.apply", "terraform.rollback", "terragrunt.apply"} <= set(
        registry.names())
