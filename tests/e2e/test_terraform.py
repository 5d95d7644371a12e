"""Terraform steps end to end: the real manager process, a real delegate, the real
``terraform`` binary (configurations of built-in ``terraform_data`` resources only: no
provider can be downloaded here). State without a backend of its own lives at the
manager, so it survives the delegate being replaced; a held lock stops a second run
with the holder named; abort stops a running terraform."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from testkit.sandbox_fixture import Aws
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
output "pin" {
  value     = "42"
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
    assert out["sensitiveOutputs"] == ["pin", "token"]
    assert "hunter2" not in str(out) and out["token"] == "(sensitive)"
    # Too short for the log masking to touch, yet not in the outputs either.
    assert out["pin"] == "(sensitive)"
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

    # Locks are per workspace: breaking one of a workspace nobody locked changes nothing.
    r = await api.client.delete("/api/tfstate/lock", params={
        "account": "acme", "provisioner": "infra", "workspace": "elsewhere"})
    assert r.status_code == 200 and r.json() == {"released": None}, r.text

    # A run that may wait for the lock waits, and gets it once the holder is aborted.
    waiter = await api.submit(tf_task("apply", **inline("other"), lockTimeout="60s"))
    await wait_for(lambda: _logged(api, waiter, "Acquiring state lock"), timeout=30,
                   what="the third run to wait for the lock")
    await api.abort(holder)
    aborted = await api.wait_finished(holder, timeout=30)
    assert aborted["status"] == "ABORTED"
    # terraform and the sleep it started are gone, within the 2 s grace (and a margin).
    await wait_for(lambda: not _sleepers(f"sleep {marker}"), timeout=10,
                   what="the aborted terraform's processes to be gone")
    third = await api.wait_finished(waiter, timeout=90)
    assert third["status"] == "SUCCESS", third["error"]
    assert third["output"]["cluster_name"] == "other"


def _git(repo: Path, *args: str) -> str:
    env = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@e", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@e", "GIT_CONFIG_GLOBAL": "/dev/null",
           "PATH": "/usr/bin:/bin"}
    return subprocess.run(["git", *args], cwd=repo, env=env, check=True,
                          capture_output=True, text=True).stdout.strip()


async def test_a_git_configuration_is_rolled_back_to_the_commit_it_was_applied_at(
        tmp_path: Path, api: ManagerApi, delegate: DelegateRunner) -> None:
    repo = tmp_path / "repo"
    (repo / "infra").mkdir(parents=True)
    _git(repo, "init", "-q", "-b", "main")
    (repo / "infra" / "main.tf").write_text(MAIN_TF)
    (repo / "infra" / "prod.tfvars").write_text('name = "from-git-v1"\n')
    _git(repo, "add", ".")
    _git(repo, "commit", "-qm", "v1")
    first_sha = _git(repo, "rev-parse", "HEAD")
    params = {"configuration": {"store": "git", "repo": str(repo), "ref": "main",
                                "folder": "infra"},
              "varFiles": ["prod.tfvars"], "variables": {"secret": "not-so-secret"}}
    v1, texts = await _done(api, tf_task("apply", **params))
    assert v1["status"] == "SUCCESS", (v1["error"], texts)
    assert v1["output"]["cluster_name"] == "from-git-v1"
    assert any(f"(commit {first_sha})" in t for t in texts), texts

    (repo / "infra" / "prod.tfvars").write_text('name = "from-git-v2"\n')
    _git(repo, "commit", "-qam", "v2")
    v2, _ = await _done(api, tf_task("apply", **params))
    assert v2["output"]["cluster_name"] == "from-git-v2"
    # The branch has moved on; the rollback goes back to the commit v1 was applied at.
    undone, texts = await _done(api, tf_task("rollback",
                                             rollbackData=v2["output"]["rollbackData"]))
    assert undone["status"] == "SUCCESS", (undone["error"], texts)
    assert undone["output"]["cluster_name"] == "from-git-v1"


async def test_a_configuration_from_the_file_store_keeps_its_folders(
        api: ManagerApi, delegate: DelegateRunner) -> None:
    module = 'variable "n" { type = string }\noutput "upper" { value = upper(var.n) }\n'
    root = ('module "m" {\n  source = "./modules/m"\n  n = var.name\n}\n'
            'variable "name" { type = string }\n'
            'output "shout" { value = module.m.upper }\n')
    for path, text in [("tf/app/main.tf", root), ("tf/app/modules/m/main.tf", module)]:
        r = await api.client.put("/api/files", params={"account": "acme", "path": path},
                                 content=text.encode())
        assert r.status_code == 200, r.text
    done, texts = await _done(api, tf_task("apply", configuration={
        "store": "files", "folder": "account:/tf/app",
        "paths": ["account:/tf/app/main.tf", "account:/tf/app/modules/m/main.tf"]},
        variables={"name": "quiet"}))
    assert done["status"] == "SUCCESS", (done["error"], texts)
    assert done["output"]["shout"] == "QUIET"


async def test_bad_params_fail_before_terraform_runs_saying_what_to_fix(
        api: ManagerApi, delegate: DelegateRunner) -> None:
    done, _ = await _done(api, tf_task("apply", **inline(), planStep="plan"))
    assert done["status"] == "FAILED"
    assert "give configuration (apply it as it is) or planStep/planId" in done["error"]
    done, _ = await _done(api, tf_task("plan", configuration={
        "store": "inline", "files": {"../escape.tf": ""}}))
    assert done["status"] == "FAILED" and "relative path inside" in done["error"]
    done, _ = await _done(api, tf_task("apply", **inline(), binary="/no/such/terraform"))
    assert done["status"] == "FAILED"
    assert "/no/such/terraform is not an executable on this delegate" in done["error"]


async def test_a_configuration_with_its_own_backend_uses_it_and_its_workspace(
        tmp_path: Path, api: ManagerApi, delegate: DelegateRunner) -> None:
    own = MAIN_TF + '\nterraform {\n  backend "local" {}\n}\n'
    done, texts = await _done(api, tf_task(
        "apply", **inline("local", own), workspace="staging",
        backendConfig={"path": str(tmp_path / "own.tfstate"),
                       "workspace_dir": str(tmp_path / "workspaces")}))
    assert done["status"] == "SUCCESS", (done["error"], texts)
    assert "State: the backend the configuration declares" in texts
    assert 'Created and switched to workspace "staging"!' in texts, texts
    written = list((tmp_path / "workspaces" / "staging").iterdir())
    assert [p.name for p in written] == ["terraform.tfstate"]
    assert '"local"' in written[0].read_text()  # the resource's input, in that state


async def test_an_admin_breaks_a_lock_left_by_a_run_that_will_not_release_it(
        api: ManagerApi, delegate: DelegateRunner) -> None:
    marker = f"{uuid.uuid4().int % 1000 + 100}.75"
    slow = inline("slow", SLOW_TF)
    slow["variables"]["pause"] = marker
    holder = await api.submit(tf_task("apply", **slow))
    await wait_for(lambda: _sleepers(f"sleep {marker}"), timeout=60,
                   what="terraform to run its local-exec sleep")
    r = await api.client.delete("/api/tfstate/lock", params={"account": "acme",
                                                             "provisioner": "infra"})
    assert r.status_code == 200, r.text
    assert f"held by task {holder} on delegate d1" in r.json()["released"]["Info"]
    second, texts = await _done(api, tf_task("plan", **inline("other")))
    assert second["status"] == "SUCCESS", (second["error"], texts)
    await api.abort(holder)
    assert (await api.wait_finished(holder, timeout=30))["status"] == "ABORTED"


async def test_the_infrastructures_aws_credentials_reach_what_terraform_runs(
        aws: Aws, api: ManagerApi, aws_delegate: DelegateRunner) -> None:
    probe = MAIN_TF.replace(
        'resource "terraform_data" "cluster" { input = var.name }',
        'resource "terraform_data" "cluster" {\n  input = var.name\n'
        '  provisioner "local-exec" {\n'
        '    command = "aws ecs describe-clusters --clusters ${var.name} '
        "--query 'clusters[0].status' --output text; echo key=$AWS_SECRET_ACCESS_KEY\"\n"
        '  }\n}\n')
    task = tf_task("apply", **inline(aws.cluster, probe), region=aws.region)
    task["selectors"] = ["ecs"]
    done, texts = await _done(api, task)
    assert done["status"] == "SUCCESS", (done["error"], texts)
    assert any(t.endswith("(local-exec): ACTIVE") for t in texts), texts
    secret = aws.environment()["AWS_SECRET_ACCESS_KEY"]
    assert not any(secret in t for t in texts)
    assert any("(local-exec): key=**************" in t for t in texts), texts


async def test_a_lock_left_by_a_killed_terraform_is_released_when_the_step_ends(
        api: ManagerApi, delegate: DelegateRunner) -> None:
    marker = f"{uuid.uuid4().int % 1000 + 100}.5"
    slow = inline("slow", SLOW_TF)
    slow["variables"]["pause"] = marker
    holder = await api.submit(tf_task("apply", **slow))
    await wait_for(lambda: _sleepers(f"sleep {marker}"), timeout=60,
                   what="terraform to run its local-exec sleep")
    # SIGKILL, as the OOM killer would: terraform cannot release its lock itself.
    [terraform] = [pid for pid in _sleepers("apply -input=false") if pid not in
                   _sleepers(f"sleep {marker}")]
    os.kill(terraform, signal.SIGKILL)
    done = await api.wait_finished(holder, timeout=60)
    assert done["status"] == "FAILED" and "killed by signal 9" in done["error"]
    texts = log_texts(await api.logs(holder))
    assert any("Released the state lock" in t and "that Terraform left held" in t
               for t in texts), texts
    after, texts = await _done(api, tf_task("apply", **inline("after")))
    assert after["status"] == "SUCCESS", (after["error"], texts)


async def test_destroy_removes_what_the_state_holds(
        api: ManagerApi, delegate: DelegateRunner) -> None:
    applied, _ = await _done(api, tf_task("apply", **inline("doomed")))
    assert applied["status"] == "SUCCESS", applied["error"]
    gone, texts = await _done(api, tf_task("destroy", **inline("doomed")))
    assert gone["status"] == "SUCCESS", (gone["error"], texts)
    assert any("terraform_data.cluster: Destruction complete" in t for t in texts), texts
    planned, texts = await _done(api, tf_task("plan", **inline("doomed")))
    assert planned["output"]["hasChanges"] is True
    assert any("terraform_data.cluster will be created" in t for t in texts), texts
