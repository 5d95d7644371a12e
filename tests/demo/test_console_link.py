"""`delegate demo --keep`'s console link: printed beside the exports, signs in once."""

from __future__ import annotations

import httpx

from cli.client import Client
from cli.console_link import print_console_link
from testkit.stack import ADMIN_TOKEN, ManagerProcess


async def test_the_printed_link_signs_in_once_and_holds_no_admin_token(
        manager: ManagerProcess) -> None:
    printed: list[str] = []
    await print_console_link(Client(manager.url, admin_token=ADMIN_TOKEN), manager.url,
                             printed.append)
    assert ADMIN_TOKEN not in "\n".join(printed)
    link = printed[0].split(": ", 1)[1]
    assert link.startswith(f"{manager.url}/ui/signin/link?token=")
    async with httpx.AsyncClient() as browser:
        first = await browser.get(link)
        assert first.status_code == 303 and first.headers["location"] == "/ui/executions"
        assert "console_session=" in first.headers["set-cookie"]
        page = await browser.get(f"{manager.url}/ui/executions")
        assert page.status_code == 200 and "<h1>Executions</h1>" in page.text
    async with httpx.AsyncClient() as someone_else:
        again = await someone_else.get(link)
    assert again.status_code == 401 and "used already" in again.text
