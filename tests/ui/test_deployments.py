"""ECS deployments watched in the console: the real manager, a real delegate on the
sandbox, chromium. A rolling deployment followed live to success, and one whose tasks
fail to start, stopped by the circuit breaker, then rolled back."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.async_api import expect

from testkit.sandbox_fixture import Aws
from testkit.stack import DelegateRunner, ManagerApi
from tests.ui.conftest import Console

GOOD = "public.ecr.aws/nginx/nginx:1.27"
BAD = "example.com/fail-to-start:1"


def rolling(aws: Aws, image: str, *, breaker: bool = False) -> dict[str, Any]:
    config: dict[str, Any] = {"maximumPercent": 200, "minimumHealthyPercent": 100}
    if breaker:
        config["deploymentCircuitBreaker"] = {"enable": True, "rollback": True}
    manifests = {
        "taskDefinition": {"store": "inline", "content": {
            "family": "web-td", "requiresCompatibilities": ["FARGATE"],
            "networkMode": "awsvpc", "cpu": "256", "memory": "512",
            "containerDefinitions": [{"name": "web", "image": image, "essential": True,
                                      "portMappings": [{"containerPort": 80}]}]}},
        "serviceDefinition": {"store": "inline", "content": {
            "launchType": "FARGATE", "serviceName": "web", "desiredCount": 1,
            "networkConfiguration": aws.network_configuration,
            "deploymentConfiguration": config}}}
    return {
        "name": f"deploy {image}", "service": "web", "selectors": ["ecs"],
        "infrastructure": {"region": aws.region, "cluster": aws.cluster},
        "steps": [{"id": "deploy", "type": "ecs.rolling_deploy", "params": {
            "pollInterval": "0.1s", "steadyStateTimeout": "40s", "manifests": manifests}}],
        "rollbackSteps": [{"id": "rollback", "type": "ecs.rolling_rollback",
                           "rollsBack": "deploy", "params": {
                               "pollInterval": "0.1s", "steadyStateTimeout": "40s",
                               "rollbackData":
                                   "<+execution.steps.deploy.output.rollbackData>"}}]}


async def _submit(api: ManagerApi, spec: dict[str, Any]) -> str:
    r = await api.client.post("/api/executions", json=spec)
    assert r.status_code == 201, r.text
    return str(r.json()["execution_id"])


@pytest.mark.timeout(180)
async def test_a_rolling_deployment_followed_live_to_success_then_rolled_back(
        console: Console, api: ManagerApi, aws_delegate: DelegateRunner, aws: Aws) -> None:
    await console.sign_in()
    page = console.page
    # The list is live: the new execution appears on it without a reload, and is opened
    # from there (while it deploys, on most runs: the sandbox deploys in about a second).
    execution_id = await _submit(api, rolling(aws, GOOD))
    await page.click(f"#rows a[href='/ui/executions/{execution_id}']")
    await expect(page.locator("#exec-status")).to_have_text("SUCCESS", timeout=90_000)
    step = page.locator("#step-steps-deploy")
    log = step.locator(".log")
    await expect(log).to_contain_text("Deployment Successful.")
    for unit in ("Fetch Manifests", "Prepare Rollback Data", "Deploy"):
        await expect(step.locator(".units li", has_text=unit)).to_contain_text("SUCCESS")
    events = log.locator("li.aws-event")
    assert await events.count() > 0
    assert (await events.first.locator(".t").text_content() or "").startswith("# AWS Event:")
    outputs = step.locator(".outputs")
    await expect(outputs).to_contain_text("taskDefinitionArn")
    await expect(outputs).to_contain_text("serviceName")
    # Every stored line once, in order: the page's history and its live lines joined.
    view = (await api.client.get(f"/api/executions/{execution_id}")).json()
    stored = [e["text"] for e in await api.logs(view["runs"][0]["task_id"])
              if e["kind"] == "log"]
    assert await log.locator("li.l .t").all_text_contents() == stored
    await console.screenshot("execution")
    # Roll back from the page: the rollback step appears on it and runs live.
    await page.click("#rollback")
    await expect(page.locator(".flash")).to_contain_text("Rollback requested")
    await expect(page.locator("#exec-status")).to_have_text("ROLLED_BACK", timeout=60_000)
    rolled = page.locator("#step-rollback-rollback")
    await expect(rolled.locator("h3 .badge")).to_have_text("SUCCESS")
    # The deployment created the service, so rolling it back deletes it.
    await expect(rolled.locator(".log")).to_contain_text("Deleted Service web.")
    done = await api.wait_execution(execution_id)
    assert [(r["step_id"], r["status"]) for r in done["runs"]] == [
        ("deploy", "SUCCESS"), ("rollback", "SUCCESS")]
    await console.goto("/ui/executions")
    await expect(page.locator("#rows tr", has_text=execution_id)).to_contain_text(
        "ROLLED_BACK")


@pytest.mark.timeout(240)
async def test_a_circuit_breaker_failure_shows_its_reason_and_the_rollback(
        console: Console, api: ManagerApi, aws_delegate: DelegateRunner, aws: Aws) -> None:
    first = await _submit(api, rolling(aws, GOOD, breaker=True))
    assert (await api.wait_execution(first))["status"] == "SUCCESS"
    await console.sign_in()
    execution_id = await _submit(api, rolling(aws, BAD, breaker=True))
    await console.goto(f"/ui/executions/{execution_id}")
    page = console.page
    # A failed step whose rollback succeeded: the execution still failed.
    await expect(page.locator("#exec-status")).to_have_text("FAILED", timeout=90_000)
    summary = page.locator(".failure")
    await expect(summary).to_contain_text("Step deploy FAILED")
    await expect(summary).to_contain_text("CannotPullContainerError")
    await expect(summary.locator(".stopped li").first).to_contain_text("TaskFailedToStart")
    await expect(summary).to_contain_text("rollback SUCCESS")
    await expect(page.locator("#step-rollback-rollback h3 .badge")).to_have_text("SUCCESS")
    await expect(page.locator("#step-rollback-rollback .log")).not_to_be_empty()
    await console.screenshot("execution-rolled-back")
    # Filtered by status, the list shows this one and not the first.
    await console.goto("/ui/executions?status=FAILED&service=web")
    rows = page.locator("#rows tr")
    await expect(rows).to_have_count(1)
    await expect(rows).to_contain_text(execution_id)
    await console.goto("/ui/executions")
    await expect(page.locator("#rows tr")).to_have_count(2)
    await console.screenshot("executions")
