"""``terraform_cloud.run`` end to end: the real manager, a real delegate, and a local
stand-in of the Terraform Cloud API (tests/standins/terraform_cloud.py) over real HTTP.
A run is queued with the step's variables, its plan and apply logs stream into the step's
units, its policy checks decide whether it is applied, its outputs come back (sensitive
ones masked), and a failed or aborted step leaves the workspace's queue free."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest

from testkit.sandbox_fixture import Aws
from testkit.stack import DelegateRunner, ManagerApi, ManagerProcess, log_texts, wait_for
from tests.standins.terraform_cloud import TerraformCloudStandin, serve_standin

ORG = "acme-corp"


@pytest.fixture
async def tfc() -> AsyncIterator[TerraformCloudStandin]:
    standin = TerraformCloudStandin()
    async with serve_standin(standin):
        yield standin


@pytest.fixture
async def delegate(manager: ManagerProcess, token: str) -> AsyncIterator[DelegateRunner]:
    async with DelegateRunner(manager.url, token, tags=("tfc",)) as d:
        await d.registered()
        yield d


def run_task(tfc: TerraformCloudStandin, workspace: str, **params: Any) -> dict[str, Any]:
    return {"type": "terraform_cloud.run", "selectors": ["tfc"], "timeout": "60s",
            "secrets": {"tfc-token": tfc.token, **params.pop("secrets", {})},
            "params": {"address": tfc.url, "organization": ORG, "workspace": workspace,
                       "apiToken": '<+secrets.getValue("tfc-token")>',
                       "pollInterval": "0.05s", **params}}


def _units(done: dict[str, Any]) -> dict[str, str]:
    return {u["name"]: u["status"] for u in done["units"]}


async def test_a_run_is_planned_applied_and_its_outputs_come_back_masked(
        api: ManagerApi, delegate: DelegateRunner, tfc: TerraformCloudStandin) -> None:
    tfc.add_workspace(ORG, "ecs-infra", outputs={"db_password": "hunter2-very-secret"},
                      sensitive={"db_password"}, policy="passed")
    task_id = await api.submit(run_task(
        tfc, "ecs-infra", variables={"cluster_name": "prod-cluster",
                                     "region_name": "<+env.region>"})
        | {"context": {"env": {"region": "eu-west-1"}}})
    done = await api.wait_finished(task_id, timeout=60)
    texts = log_texts(await api.logs(task_id))
    assert done["status"] == "SUCCESS", (done["error"], texts)
    out = done["output"]
    assert out["cluster_name"] == "prod-cluster" and out["region_name"] == "eu-west-1"
    # A sensitive output is masked wherever the step's results go (outputs included).
    assert "db_password" in out and "hunter2" not in json.dumps(out)
    assert out["sensitiveOutputs"] == ["db_password"]
    assert out["runStatus"] == "applied" and out["runId"].startswith("run-")
    assert _units(done) == {"Plan": "SUCCESS", "Policy Checks": "SUCCESS", "Apply": "SUCCESS"}
    assert "Plan: 1 to add, 0 to change, 0 to destroy." in texts
    assert "Apply complete! Resources: 1 added, 0 changed, 0 destroyed." in texts
    assert any("Outputs: cluster_name, db_password, region_name (sensitive, masked: "
               "db_password)" in t for t in texts)
    assert any(t.startswith("Policy check polchk-") and "passed" in t for t in texts)
    assert not any(tfc.token in t or "hunter2" in t for t in texts)
    assert not any("\x02" in t or "\x03" in t for t in texts)
    # The run carried the variables as HCL strings; the log URLs never got the token.
    run = tfc.runs[out["runId"]]
    assert run.variables == {"cluster_name": "prod-cluster", "region_name": "eu-west-1"}
    assert run.attributes["auto-apply"] is False and run.actions_seen == ["apply"]
    assert tfc.log_requests_with_auth == 0


async def test_a_soft_failed_policy_fails_and_discards_unless_overridden(
        api: ManagerApi, delegate: DelegateRunner, tfc: TerraformCloudStandin) -> None:
    tfc.add_workspace(ORG, "strict", policy="soft_failed")
    failed = await api.wait_finished(await api.submit(run_task(tfc, "strict")), timeout=60)
    assert failed["status"] == "FAILED"
    assert "soft-failed" in failed["error"] and "overridePolicies: true" in failed["error"]
    assert tfc.runs[failed["output"]["runId"]].actions_seen == ["discard"]
    assert tfc.runs[failed["output"]["runId"]].status == "discarded"

    done = await api.wait_finished(
        await api.submit(run_task(tfc, "strict", overridePolicies=True)), timeout=60)
    texts = log_texts(await api.logs(done["task_id"]))
    assert done["status"] == "SUCCESS", (done["error"], texts)
    assert any("Overrode soft-failed policy check" in t for t in texts)
    assert tfc.runs[done["output"]["runId"]].status == "applied"


async def test_a_hard_failed_policy_or_a_failed_plan_fails_with_the_reason(
        api: ManagerApi, delegate: DelegateRunner, tfc: TerraformCloudStandin) -> None:
    tfc.add_workspace(ORG, "forbidden", policy="hard_failed")
    tfc.add_workspace(ORG, "broken", plan_fails=True)
    hard = await api.wait_finished(await api.submit(run_task(tfc, "forbidden")), timeout=60)
    assert hard["status"] == "FAILED" and "hard-failed policy check" in hard["error"]
    assert _units(hard)["Policy Checks"] == "FAILURE"

    broken = await api.wait_finished(await api.submit(run_task(tfc, "broken")), timeout=60)
    assert broken["status"] == "FAILED"
    assert "The plan ended errored" in broken["error"]
    assert "Error: Invalid reference" in broken["error"]
    assert _units(broken)["Plan"] == "FAILURE"


async def test_a_plan_run_applies_nothing(
        api: ManagerApi, delegate: DelegateRunner, tfc: TerraformCloudStandin) -> None:
    ws = tfc.add_workspace(ORG, "preview")
    done = await api.wait_finished(
        await api.submit(run_task(tfc, "preview", runType="plan")), timeout=60)
    assert done["status"] == "SUCCESS", done["error"]
    assert _units(done)["Apply"] == "SKIPPED"
    run = tfc.runs[done["output"]["runId"]]
    assert run.attributes["plan-only"] is True and run.actions_seen == []
    assert ws.state == {}


async def test_a_wrong_token_or_workspace_says_what_to_fix(
        api: ManagerApi, delegate: DelegateRunner, tfc: TerraformCloudStandin) -> None:
    tfc.add_workspace(ORG, "ecs-infra")
    wrong = await api.wait_finished(await api.submit(
        run_task(tfc, "ecs-infra", secrets={"tfc-token": "not-the-token"})), timeout=60)
    assert wrong["status"] == "FAILED"
    assert "the API token was refused (401)" in wrong["error"]
    assert "not-the-token" not in wrong["error"]
    missing = await api.wait_finished(await api.submit(run_task(tfc, "nope")), timeout=60)
    assert missing["status"] == "FAILED"
    assert f"reading workspace {ORG}/nope: not found (404)" in missing["error"]


async def test_abort_cancels_the_run_it_queued(
        api: ManagerApi, delegate: DelegateRunner, tfc: TerraformCloudStandin) -> None:
    tfc.add_workspace(ORG, "slow", hang_in_planning=True)
    task_id = await api.submit(run_task(tfc, "slow"))
    await wait_for(lambda: any(r.status == "planning" for r in tfc.runs.values()),
                   timeout=30, what="the run to be planning")
    await api.abort(task_id)
    done = await api.wait_finished(task_id, timeout=30)
    assert done["status"] == "ABORTED"
    (run,) = tfc.runs.values()
    await wait_for(lambda: run.status == "canceled", timeout=10, what="the run cancelled")
    assert run.actions_seen == ["cancel"]


async def test_a_terraform_cloud_provisioner_maps_its_outputs_to_the_infrastructure(
        aws: Aws, api: ManagerApi, aws_delegate: DelegateRunner,
        tfc: TerraformCloudStandin) -> None:
    tfc.add_workspace(ORG, "ecs-infra")
    provision = run_task(tfc, "ecs-infra", variables={"cluster_name": aws.cluster,
                                                      "region_name": aws.region})
    spec = {
        "name": "provisioned by terraform cloud", "service": "myapp", "selectors": ["ecs"],
        "secrets": provision["secrets"],
        "infrastructure": {"region": "<+provisioner.region_name>",
                           "cluster": "<+provisioner.cluster_name>"},
        "provisioner": {"steps": [{"id": "tfc", "type": "terraform_cloud.run",
                                   "params": provision["params"]}]},
        "steps": [{"id": "show", "type": "shell.script", "params": {
            "script": "aws ecs describe-clusters --clusters \"$ECS_CLUSTER\" "
                      "--query 'clusters[0].clusterName' --output text"}}]}
    r = await api.client.post("/api/executions", json=spec)
    assert r.status_code == 201, r.text
    done = await api.wait_execution(r.json()["execution_id"])
    assert done["status"] == "SUCCESS", json.dumps(done)[:3000]
    assert done["infrastructure"]["cluster"] == aws.cluster
    show = next(r for r in done["runs"] if r["step_id"] == "show")
    assert aws.cluster in log_texts(await api.logs(show["task_id"]))
