"""Terraform steps end to end: the real manager process, a real delegate, the real
``terraform`` binary (configurations of built-in ``terraform_data`` resources only: no
provider can be downloaded here). State without a backend of its own lives at the
manager, so it survives the delegate being replaced; a held lock stops a second run
with the holder named; abort stops a running terraform."""

from __future__ import annotations

import shutil
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
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


SLOW_TF = MAIN_TF.replace(
    'resource "terraform_data" "cluster" { input = var.name }',
    'resource "terraform_data" "cluster" {\n  input = var.name\n'
    '  provisioner "local-exec" { command = "sleep ${var.pause}" }\n}\n'
    'variable "pause" { type = string }')


def _sleepers(marker: str) -> list[int]:
    """Pids of processes whose command line holds ``marker``."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            state = (proc / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except (FileNotFoundError, ProcessLookupError, IndexError):
            continue
        if marker in cmdline and state != "Z":
            found.append(int(proc.name))
    return found


async def _logged(api: ManagerApi, task_id: str, text: str) -> bool:
    return any(text in t for t in log_texts(await api.logs(task_id)))


async def test_rollback_after_the_delegate_was_replaced_applies_the_earlier_configuration(
        manager: ManagerProcess, token: str, api: ManagerApi) -> None:
    async with DelegateRunner(manager.url, token, name="first", tags=("tf",)) as first:
        await first.registered()
        blue, _ = await _done(api, tf_task("apply", **inline("blue")))
        green, _ = await _done(api, tf_task("apply", **inline("green")))
    assert blue["status"] == green["status"] == "SUCCESS", (blue["error"], green["error"])
    assert green["output"]["cluster_name"] == "green"
    assert green["output"]["rollbackData"]["previousApply"] is not None

    # A new delegate, nothing of the first one's files: the state is at the manager.
    async with DelegateRunner(manager.url, token, name="second", tags=("tf",)) as second:
        await second.registered()
        undone, texts = await _done(api, tf_task(
            "rollback", rollbackData=green["output"]["rollbackData"]))
        assert undone["status"] == "SUCCESS", (undone["error"], texts)
        assert undone["output"]["cluster_name"] == "blue"
        # The resource the first delegate applied was in the state: updated, not created.
        assert any('input  = "green" -> "blue"' in t for t in texts), texts
        again, texts = await _done(api, tf_task("plan", **inline("blue")))
        assert again["status"] == "SUCCESS" and again["output"]["hasChanges"] is False, texts


async def test_rollback_with_no_earlier_apply_destroys_what_the_apply_created(
        api: ManagerApi, delegate: DelegateRunner) -> None:
    applied, _ = await _done(api, tf_task("apply", **inline("only")))
    assert applied["status"] == "SUCCESS", applied["error"]
    undone, texts = await _done(api, tf_task(
        "rollback", rollbackData=applied["output"]["rollbackData"]))
    assert undone["status"] == "SUCCESS", (undone["error"], texts)
    assert any("no successful apply before" in t for t in texts), texts
    assert any("Destroy complete! Resources: 1 destroyed." in t for t in texts), texts


async def test_a_held_lock_fails_a_second_run_naming_the_holder_and_abort_releases_it(
        api: ManagerApi, delegate: DelegateRunner) -> None:
    marker = f"{uuid.uuid4().int % 1000 + 100}.25"
    slow = inline("slow", SLOW_TF)
    slow["variables"]["pause"] = marker
    holder = await api.submit(tf_task("apply", **slow))
    await wait_for(lambda: _sleepers(f"sleep {marker}"), timeout=60,
                   what="terraform to run its local-exec sleep")

    second, texts = await _done(api, tf_task("apply", **inline("other")))
    assert second["status"] == "FAILED"
    assert "Error acquiring the state lock" in "\n".join(texts)
    assert f"is locked: held by task {holder} on delegate d1 (OperationTypeApply" in \
        second["error"], second["error"]

    await api.abort(holder)
    aborted = await api.wait_finished(holder, timeout=30)
    assert aborted["status"] == "ABORTED"
    # terraform and the sleep it started are gone, within the 2 s grace (and a margin).
    await wait_for(lambda: not _sleepers(f"sleep {marker}"), timeout=10,
                   what="the aborted terraform's processes to be gone")
    third, texts = await _done(api, tf_task("apply", **inline("other")))
    assert third["status"] == "SUCCESS", (third["error"], texts)
