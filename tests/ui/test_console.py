"""The console's pages in a real browser against the real manager and a real delegate:
sign-in, a log followed live from the middle, abort, untrusted text shown as text,
keyboard navigation, log search and raw download, one-time links, delegates, tasks."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
from playwright.async_api import expect

from testkit.stack import ADMIN_TOKEN, DelegateRunner, ManagerApi, ManagerProcess, gate, wait_for
from tests.ui.conftest import Console

XSS = "<script>alert(1)</script>"


async def submit_execution(api: ManagerApi, steps: list[dict[str, Any]],
                           name: str = "ui test", service: str = "ui-svc") -> str:
    r = await api.client.post("/api/executions", json={
        "name": name, "service": service, "selectors": ["ui"], "steps": steps})
    assert r.status_code == 201, r.text
    return str(r.json()["execution_id"])


async def first_task(api: ManagerApi, execution_id: str) -> str:
    async def check() -> str | None:
        view = (await api.client.get(f"/api/executions/{execution_id}")).json()
        return view["runs"][0]["task_id"] if view["runs"] else None
    return str(await wait_for(check, what="the execution's first task"))


async def test_sign_in_refuses_a_wrong_token_then_sets_a_strict_httponly_cookie(
        console: Console) -> None:
    await console.goto("/ui/executions")
    await console.page.wait_for_url("**/ui/signin?next=*")
    await console.screenshot("signin")
    await console.page.fill("#token", "not-the-token")
    await console.page.press("#token", "Enter")
    await expect(console.page.locator("[role=alert]")).to_contain_text(
        "not the manager's admin token")
    await console.page.fill("#token", ADMIN_TOKEN)
    await console.page.press("#token", "Enter")
    await console.page.wait_for_url("**/ui/executions")
    cookie = next(c for c in await console.context.cookies()
                  if c["name"] == "console_session")
    assert cookie["httpOnly"] is True and cookie["sameSite"] == "Strict"
    assert ADMIN_TOKEN not in cookie["value"]
    await console.page.click("text=Sign out")
    await console.page.wait_for_url("**/ui/signin")
    await console.goto("/ui/delegates")
    await console.page.wait_for_url("**/ui/signin?next=*")


async def test_a_page_opened_mid_run_shows_what_came_before_then_follows(
        console: Console, api: ManagerApi, delegate: DelegateRunner) -> None:
    execution_id = await submit_execution(api, [
        {"id": "flood", "type": "test.flood", "params": {"lines": 300, "gate_at": 120}}])
    task_id = await first_task(api, execution_id)
    reached, opened = gate(task_id)
    await asyncio.wait_for(reached.wait(), 20)
    await wait_for(lambda: _has(api, task_id, "line 000119"), what="line 119 stored")
    await console.sign_in()
    await console.goto(f"/ui/executions/{execution_id}")
    lines = console.page.locator("#step-steps-flood .log li.l .t")
    await expect(lines.first).to_have_text("line 000000")
    await expect(lines.last).to_have_text("line 000119")
    opened.set()
    await expect(lines.last).to_have_text("line 000299")
    await expect(console.page.locator("#exec-status")).to_have_text("SUCCESS")
    texts = await lines.all_text_contents()
    assert texts == [f"line {i:06d}" for i in range(300)]  # nothing missed or twice
    await expect(console.page.locator("#step-steps-flood .units")).to_contain_text("Flood")


async def _has(api: ManagerApi, task_id: str, text: str) -> bool:
    return any(e.get("text") == text for e in await api.logs(task_id))


async def test_abort_stops_the_running_step(console: Console, api: ManagerApi,
                                            delegate: DelegateRunner) -> None:
    execution_id = await submit_execution(api, [
        {"id": "wait", "type": "test.hang"}, {"id": "never", "type": "test.echo"}])
    task_id = await first_task(api, execution_id)
    await wait_for(lambda: _has(api, task_id, "hanging"), what="the step running")
    await console.sign_in()
    await console.goto(f"/ui/executions/{execution_id}")
    await expect(console.page.locator("#step-steps-wait .log")).to_contain_text("hanging")
    await expect(console.page.locator("#step-steps-never")).to_contain_text("PENDING")
    await console.page.click("#abort")
    await expect(console.page.locator(".flash")).to_contain_text("Abort requested")
    await expect(console.page.locator("#exec-status")).to_have_text("ABORTED")
    await expect(console.page.locator("#step-steps-wait h3 .badge")).to_have_text("ABORTED")
    await expect(console.page.locator("#abort")).to_have_count(0)  # gone once it ended
    done = await api.wait_execution(execution_id)
    assert done["status"] == "ABORTED"
    assert [r["step_id"] for r in done["runs"]] == ["wait"]


async def test_a_script_tag_in_a_log_line_and_an_output_is_shown_as_text(
        console: Console, api: ManagerApi, delegate: DelegateRunner) -> None:
    execution_id = await submit_execution(api, [{"id": "xss", "type": "shell.script", "params": {
        "script": f"echo '{XSS}'\nNOTE='<img src=x onerror=alert(2)>'",
        "outputVariables": ["NOTE"]}}], name=f"deploy {XSS}")
    assert (await api.wait_execution(execution_id))["status"] == "SUCCESS"
    await console.sign_in()
    await expect(console.page.locator("#rows")).to_contain_text(f"deploy {XSS}")
    await console.goto(f"/ui/executions/{execution_id}")
    log = console.page.locator("#step-steps-xss .log")
    await expect(log.locator("li.l .t", has_text=XSS)).to_have_count(1)
    await expect(console.page.locator(".outputs")).to_contain_text("<img src=x onerror")
    assert await console.page.locator("main script, main img").count() == 0
    assert console.dialogs == []


async def test_keyboard_alone_reaches_every_main_page_and_an_execution(
        console: Console, api: ManagerApi, delegate: DelegateRunner) -> None:
    execution_id = await submit_execution(api, [{"id": "hi", "type": "test.echo"}],
                                          name="keyboard")
    await api.wait_execution(execution_id)
    await console.sign_in()
    page = console.page
    await page.keyboard.press("Tab")
    await expect(page.locator(".skip")).to_be_focused()
    await page.keyboard.press("Tab")
    await expect(page.locator("nav a", has_text="Executions")).to_be_focused()
    await page.keyboard.press("Tab")
    await page.keyboard.press("Tab")
    await expect(page.locator("nav a", has_text="Delegates")).to_be_focused()
    await page.keyboard.press("Enter")
    await page.wait_for_url("**/ui/delegates")
    await page.goto(console.url + "/ui/executions")
    await page.keyboard.press("j")
    first = page.locator("#rows tr td:first-child a").first
    await expect(first).to_be_focused()
    await page.keyboard.press("Enter")
    await page.wait_for_url(f"**/ui/executions/{execution_id}")
    await page.keyboard.press("/")
    await expect(page.locator("#q")).to_be_focused()


async def test_log_search_finds_lines_and_each_step_links_its_raw_log(
        console: Console, api: ManagerApi, delegate: DelegateRunner) -> None:
    execution_id = await submit_execution(api, [
        {"id": "one", "type": "test.flood", "params": {"lines": 50}},
        {"id": "two", "type": "shell.script", "params": {"script": "echo needle in two"}}])
    assert (await api.wait_execution(execution_id))["status"] == "SUCCESS"
    await console.sign_in()
    await console.goto(f"/ui/executions/{execution_id}")
    await console.page.fill("#q", "000042")
    await console.page.press("#q", "Enter")
    found = console.page.locator(".found li")
    await expect(found).to_have_count(1)
    await expect(found).to_contain_text("one · Flood")
    await console.page.fill("#q", "needle")
    await console.page.press("#q", "Enter")
    await expect(console.page.locator(".found li")).to_contain_text("needle in two")
    async with console.page.expect_download() as info:
        await console.page.click("#step-steps-one a:text('raw log')")
    download = await info.value
    text = (await download.path()).read_text()
    assert "[Flood] INFO line 000049" in text and text.count("\n") == 50


async def test_a_one_time_link_signs_in_once(console: Console, manager: ManagerProcess) -> None:
    async with manager.api() as client:
        r = await client.post("/api/ui/sign-in-links")
        assert r.status_code == 201
        link = r.json()["path"]
        refused = await httpx.AsyncClient(base_url=manager.url).post("/api/ui/sign-in-links")
        assert refused.status_code == 401
    await console.goto(link)
    await console.page.wait_for_url("**/ui/executions")
    other = await console.context.browser.new_context()  # type: ignore[union-attr]
    try:
        tab = await other.new_page()
        await tab.goto(manager.url + link)
        await expect(tab.locator("[role=alert]")).to_contain_text("used already")
    finally:
        await other.close()


async def test_delegates_and_tasks_pages_show_what_the_api_knows(
        console: Console, api: ManagerApi, delegate: DelegateRunner) -> None:
    task_id = await api.submit({"type": "test.echo", "selectors": ["ui"],
                                "params": {"hello": "world"}})
    await api.wait_finished(task_id)
    waiting = await api.submit({"type": "test.echo", "selectors": ["nobody-has-this"]})
    await console.sign_in()
    await console.goto("/ui/delegates")
    row = console.page.locator("#rows tr", has_text="ui-delegate")
    await expect(row).to_contain_text("connected")
    for tag in ("ecs", "ui"):
        await expect(row.locator(".tag", has_text=tag)).to_have_count(1)
    await expect(row.locator("td").nth(4)).to_have_text("4")  # capacity
    await console.screenshot("delegates")
    await console.goto("/ui/tasks")
    await expect(console.page.locator("#rows tr", has_text=task_id)).to_contain_text("SUCCESS")
    await expect(console.page.locator("#rows tr", has_text=waiting)).to_contain_text("QUEUED")
    await console.screenshot("tasks")
    await console.page.click(f"text={task_id}")
    await expect(console.page.locator(".log")).to_contain_text("params {'hello': 'world'}")
    await expect(console.page.locator(".outputs")).to_contain_text("echo")


async def test_a_long_log_opens_on_its_last_page_and_pages_in_earlier_lines(
        console: Console, api: ManagerApi, delegate: DelegateRunner) -> None:
    execution_id = await submit_execution(api, [
        {"id": "big", "type": "test.flood", "params": {"lines": 2500, "pause_every": 0}}])
    assert (await api.wait_execution(execution_id))["status"] == "SUCCESS"
    await console.sign_in()
    await console.goto(f"/ui/executions/{execution_id}")
    lines = console.page.locator("#step-steps-big li.l .t")
    await expect(lines.last).to_have_text("line 002499")
    count = await lines.count()
    assert count < 1100  # one page (and the unit's lines), not the whole log
    button = console.page.locator("#step-steps-big button.earlier")
    await button.click()
    await expect(lines).to_have_count(count + 1000)
    await button.click()
    await expect(lines.first).to_have_text("line 000000")
    await expect(button).to_have_count(0)
    texts = await lines.all_text_contents()
    assert texts == [f"line {i:06d}" for i in range(2500)]
