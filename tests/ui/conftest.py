"""The console in a real browser: Debian's chromium driven by Playwright against the real
manager process, a real delegate and (for ECS deployments) the sandbox.

Chromium missing is a failure, not a skip: a skipped browser test hides a gap. The one
exception is a developer's machine where we are not root and so cannot install it."""

from __future__ import annotations

import os
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Browser, BrowserContext, Page, async_playwright

from testkit.browser import CHROMIUM_ARGS, MISSING, chromium
from testkit.stack import ADMIN_TOKEN, DelegateRunner, ManagerProcess

# Every run takes the screenshots; they replace the README's ones only when asked
# (`CONSOLE_SCREENSHOTS=docs/screenshots pytest tests/ui`), so running the suite leaves
# the tree as it was.
SCREENSHOTS = Path(os.environ.get("CONSOLE_SCREENSHOTS")
                   or Path(tempfile.gettempdir()) / "ecs-delegate-console-screenshots")
SCREENSHOTS.mkdir(parents=True, exist_ok=True)


def chromium_path() -> str:
    found = chromium()
    if found:
        return found
    if os.geteuid() != 0:
        pytest.skip(MISSING + " — not root here, so it cannot be installed")
    pytest.fail(MISSING)


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    path = chromium_path()
    async with async_playwright() as pw:
        launched = await pw.chromium.launch(executable_path=path, args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            await launched.close()


class Console:
    """One browser tab on the console, with what went wrong in it recorded."""

    def __init__(self, context: BrowserContext, page: Page, url: str) -> None:
        self.context = context
        self.page = page
        self.url = url
        self.errors: list[str] = []
        self.dialogs: list[str] = []
        page.on("pageerror", lambda exc: self.errors.append(str(exc)))
        # Script errors and CSP refusals; not "Failed to load resource" (a 401 page).
        page.on("console", lambda msg: msg.type == "error" and "Failed to load" not in msg.text
                and self.errors.append(msg.text))

        async def dialog(d: Any) -> None:
            self.dialogs.append(d.message)
            await d.dismiss()

        page.on("dialog", dialog)

    async def goto(self, path: str) -> None:
        await self.page.goto(self.url + path)

    async def sign_in(self, token: str = ADMIN_TOKEN) -> None:
        await self.goto("/ui/signin")
        await self.page.fill("#token", token)
        await self.page.press("#token", "Enter")
        await self.page.wait_for_url("**/ui/executions")

    async def screenshot(self, name: str) -> None:
        await self.page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


@pytest.fixture
async def console(browser: Browser, manager: ManagerProcess) -> AsyncIterator[Console]:
    context = await browser.new_context(viewport={"width": 1280, "height": 860},
                                        accept_downloads=True)
    page = await context.new_page()
    page.set_default_timeout(20_000)
    tab = Console(context, page, manager.url)
    try:
        yield tab
    finally:
        await context.close()
    assert tab.errors == [], tab.errors  # a CSP refusal or a script error shows up here


@pytest.fixture
async def delegate(manager: ManagerProcess, token: str) -> AsyncIterator[DelegateRunner]:
    """A delegate with the test task types (flood, hang, echo) and the built-in ones."""
    async with DelegateRunner(manager.url, token, name="ui-delegate",
                              tags=("ecs", "ui")) as d:
        await d.registered()
        yield d
