"""The Definitions and Instances pages in a real browser against the real manager, a
real delegate and the sandbox: stored definitions with their spec as text, and a
deployed service tracked, synced from the page (the sync needs the CSRF token)."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest
from playwright.async_api import expect

from testkit.sandbox_fixture import Aws
from testkit.stack import ADMIN_TOKEN, DelegateRunner, ManagerApi, ManagerProcess, wait_for
from tests.e2e.test_instances import deploy_task
from tests.ui.conftest import Console

XSS = "<script>alert(1)</script>"
DOCS: list[dict[str, Any]] = [
    {"kind": "Service", "name": "myapp", "spec": {
        "manifests": {"taskDefinition": {"store": "inline", "content": {"family": "myapp"}}},
        "variables": {"NOTE": XSS}}},
    {"kind": "Environment", "name": "production",
     "spec": {"type": "Production", "variables": {"LOG_LEVEL": "warn"}}},
    {"kind": "Infrastructure", "name": "prod-east", "spec": {
        "environment": "production", "region": "us-east-1", "cluster": "prod"}}]


async def _apply(api: ManagerApi, docs: list[dict[str, Any]]) -> None:
    r = await api.client.post("/api/definitions/apply",
                              json={"documents": docs, "account_id": "acme"})
    assert r.status_code == 200, r.text


async def test_definitions_list_filter_and_a_spec_shown_as_text(
        console: Console, api: ManagerApi) -> None:
    await _apply(api, DOCS)
    changed = {**DOCS[1], "spec": {"type": "Production", "variables": {"LOG_LEVEL": "x"}}}
    await _apply(api, [changed])
    await console.sign_in()
    await console.goto("/ui/definitions")
    rows = console.page.locator("#rows tr")
    await expect(rows).to_have_count(3)
    await expect(rows.filter(has_text="production")).to_contain_text("2")
    await console.screenshot("definitions")
    await console.page.select_option("#f-kind", "Service")
    await console.page.click("text=Filter")
    await expect(rows).to_have_count(1)
    await console.page.click("#rows a:text('myapp')")
    await console.page.wait_for_url("**/ui/definitions/Service/myapp?account=acme")
    await expect(console.page.locator("#spec")).to_contain_text(f"NOTE: {XSS}")
    assert await console.page.locator("main script").count() == 0
    assert console.dialogs == []
    await console.goto("/ui/definitions/Environment/production")
    await expect(console.page.locator("#revisions tbody tr")).to_have_count(2)
    await expect(console.page.locator("#spec")).to_contain_text("LOG_LEVEL: x")


@pytest.mark.timeout(180)
async def test_a_deployed_service_is_shown_and_synced_from_the_page(
        console: Console, api: ManagerApi, aws_delegate: DelegateRunner, aws: Aws,
        manager: ManagerProcess) -> None:
    done = await api.wait_finished(await api.submit(deploy_task(aws, "web", "nginx:1.27")),
                                   timeout=90)
    assert done["status"] == "SUCCESS", done["error"]
    # Without the page's CSRF token the sync is refused.
    async with httpx.AsyncClient(base_url=manager.url) as client:
        form = await client.get("/ui/signin")
        pre = re.search(r'name="csrf" value="([^"]+)"', form.text)
        assert pre is not None
        await client.post("/ui/signin", data={"token": ADMIN_TOKEN, "csrf": pre.group(1)})
        for given in ({}, {"csrf": "forged"}):
            assert (await client.post("/ui/instances/sync", data=given)).status_code == 403
    states = (await api.client.get("/api/instances")).json()["services"]
    assert [s["state"] for s in states] == ["pending"]
    await console.sign_in()
    await console.goto("/ui/instances")
    card = console.page.locator("section.instance[data-service='web']")
    await expect(card.locator(".badge").first).to_have_text("pending")
    await console.page.click("#sync")
    await expect(console.page.locator(".flash")).to_contain_text("Sync requested")

    async def synced() -> bool:
        found = (await api.client.get("/api/instances")).json()["services"]
        return bool(found[0]["state"] == "in_sync")
    await wait_for(synced, what="the sync's answer stored", timeout=60)
    await console.goto("/ui/instances")
    await expect(card.locator(".badge").first).to_have_text("in_sync")
    await expect(card.locator(".deployed")).to_contain_text("web:1")
    await expect(card.locator(".running")).to_have_text("web:1")
    await expect(card.locator(".counts")).to_have_text("2 / 2")
    await expect(card.locator("table.tasks tbody tr")).to_have_count(2)
    await expect(card.locator("table.tasks tbody tr").first).to_contain_text("nginx:1.27")
    await expect(card.locator("ul.changes")).to_contain_text("started")
    await console.screenshot("instances")
