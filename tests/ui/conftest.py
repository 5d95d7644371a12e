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
import pytest_asyncio
from playwright.async_api import Browser, BrowserContext, Page, Playwright, async_playwright

from testkit.browser import CHROMIUM_ARGS, MISSING, chromium
from testkit.sandbox_fixture import Aws
from testkit.stack import ADMIN_TOKEN, DelegateRunner, ManagerApi, ManagerProcess

HERE = Path(__file__).parent

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


# One chromium for the whole run: launching it (and Playwright's driver) cost 1.5-3 s a
# test. Each test still gets a fresh browser context (its own cookies, storage and cache),
# so no state passes between tests. Playwright's objects belong to the event loop that
# made them, so the tests here and the async fixtures they use run on the session's loop;
# the fixtures below that hold a client or a task are this package's copies of
# tests/conftest.py's, on that loop.


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    session_loop = pytest.mark.asyncio(loop_scope="session")
    for item in items:
        if item.path.is_relative_to(HERE) and pytest_asyncio.is_async_test(item):
            item.add_marker(session_loop, append=False)


class Chromium:
    """The run's chromium, launched again should it have gone (a crash in one test must
    not fail every later one)."""

    def __init__(self, pw: Playwright, path: str) -> None:
        self.pw = pw
        self.path = path
        self.launched: Browser | None = None

    async def live(self) -> Browser:
        if self.launched is None or not self.launched.is_connected():
            self.launched = await self.pw.chromium.launch(executable_path=self.path,
                                                          args=CHROMIUM_ARGS)
        return self.launched


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def _chromium() -> AsyncIterator[Chromium]:
    path = chromium_path()
    async with async_playwright() as pw:
        shared = Chromium(pw, path)
        try:
            yield shared
        finally:
            if shared.launched is not None:
                await shared.launched.close()


@pytest_asyncio.fixture(loop_scope="session")
async def browser(_chromium: Chromium) -> Browser:
    return await _chromium.live()


@pytest_asyncio.fixture(loop_scope="session")
async def api(manager: ManagerProcess) -> AsyncIterator[ManagerApi]:
    async with manager.api() as client:
        yield ManagerApi(client)


@pytest_asyncio.fixture(loop_scope="session")
async def token(api: ManagerApi) -> str:
    return await api.create_token("acme")


@pytest_asyncio.fixture(loop_scope="session")
async def aws_delegate(aws: Aws, monkeypatch: pytest.MonkeyPatch, manager: ManagerProcess,
                       token: str) -> AsyncIterator[DelegateRunner]:
    """A real delegate tagged ``ecs`` whose AWS is the sandbox (as tests/conftest.py's)."""
    for key, value in aws.environment().items():
        monkeypatch.setenv(key, value)
    async with DelegateRunner(manager.url, token, tags=("ecs",)) as d:
        await d.registered()
        yield d


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


@pytest_asyncio.fixture(loop_scope="session")
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


@pytest_asyncio.fixture(loop_scope="session")
async def delegate(manager: ManagerProcess, token: str) -> AsyncIterator[DelegateRunner]:
    """A delegate with the test task types (flood, hang, echo) and the built-in ones."""
    async with DelegateRunner(manager.url, token, name="ui-delegate",
                              tags=("ecs", "ui")) as d:
        await d.registered()
        yield d
