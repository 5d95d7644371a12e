"""Terraform steps end to end: the real manager process, a real delegate, the real
``terraform`` binary (configurations of built-in ``terraform_data`` resources only: no
provider can be downloaded here). State without a backend of its own lives at the
manager, so it survives the delegate being replaced; a held lock stops a second run
with the holder named; abort stops a running terraform."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from typing import Any

import pytest

from testkit.stack import DelegateRunner, ManagerApi, ManagerProcess, log_texts, wait_for

pytestmark = pytest.mark.skipif(shutil.which("terraform") is None,
                                reason="terraform is not on PATH")

MAIN_TF = """
variable "name" { type = string }
variable "secret" {
  type      = string
  sensitive = true
}
resource "terraform_data" "cluster" { input = var.name }
output "cluster_name" { value = terraform_data.cluster.output }
output "region_name" { value = "us-east-1" }
output "token" {
  value     = "tok-${var.secret}"
  sensitive = true
}
"""


def tf_task(kind: str, **params: Any) -> dict[str, Any]:
    secrets = params.pop("secrets", {"tf": "hunter2-very-secret"})
    return {"type": f"terraform.{kind}", "selectors": ["tf"], "timeout": "120s",
            "secrets": secrets,
            "params": {"provisionerIdentifier": "infra", "killGrace": "2s", **params}}


def inline(name: str = "blue", tf: str = MAIN_TF) -> dict[str, Any]:
    return {"configuration": {"store": "inline", "files": {"main.tf": tf}},
            "variables": {"name": name, "secret": '<+secrets.getValue("tf")>'}}


@pytest.fixture
async def delegate(manager: ManagerProcess, token: str) -> AsyncIterator[DelegateRunner]:
    async with DelegateRunner(manager.url, token, tags=("tf",)) as d:
        await d.registered()
        yield d


async def _done(api: ManagerApi, task: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    task_id = await api.submit(task)
    done = await api.wait_finished(task_id, timeout=120)
    return done, log_texts(await api.logs(task_id))


async def test_plan_then_apply_of_the_plan_gives_outputs_with_the_sensitive_one_masked(
        api: ManagerApi, delegate: DelegateRunner) -> None:
    planned, texts = await _done(api, tf_task("plan", **inline()))
    assert planned["status"] == "SUCCESS", (planned["error"], texts)
    assert planned["output"]["hasChanges"] is True
    assert any("terraform_data.cluster will be created" in t for t in texts), texts
    assert any("Using" in t and "Terraform v1." in t for t in texts), texts

    applied, texts = await _done(api, tf_task("apply", planId=planned["output"]["planId"]))
    assert applied["status"] == "SUCCESS", (applied["error"], texts)
    out = applied["output"]
    assert out["cluster_name"] == "blue" and out["region_name"] == "us-east-1"
    assert out["sensitiveOutputs"] == ["token"]
    assert "hunter2" not in str(out) and out["token"] == "**************"
    assert not any("hunter2" in t for t in texts)
    assert "Output token = (sensitive)" in texts
    assert out["rollbackData"]["previousApply"] is None
