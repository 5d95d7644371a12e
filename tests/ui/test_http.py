"""The console's guarantees over plain HTTP against the real manager: every answer under
/ui/ carries the strict CSP, data needs a session, and no POST works without its
session's CSRF token."""

from __future__ import annotations

import contextlib
import re
from collections.abc import AsyncIterator

import httpx

from testkit.stack import ADMIN_TOKEN, DelegateRunner, ManagerApi, ManagerProcess, wait_for


@contextlib.asynccontextmanager
async def _signed_in(manager: ManagerProcess
                     ) -> AsyncIterator[tuple[httpx.AsyncClient, str]]:
    async with httpx.AsyncClient(base_url=manager.url) as client:
        yield client, await _sign_in(client)


async def _sign_in(client: httpx.AsyncClient) -> str:
    form = await client.get("/ui/signin")
    pre = re.search(r'name="csrf" value="([^"]+)"', form.text)
    assert pre is not None
    r = await client.post("/ui/signin", data={"token": ADMIN_TOKEN, "csrf": pre.group(1)})
    assert r.status_code == 303
    page = await client.get("/ui/executions")
    csrf = re.search(r'data-csrf="([^"]+)"', page.text)
    assert csrf is not None
    return csrf.group(1)


async def test_every_console_answer_carries_the_strict_csp(manager: ManagerProcess) -> None:
    async with _signed_in(manager) as (client, _):
        for path in ("/ui/signin", "/ui/executions", "/ui/tasks", "/ui/delegates",
                     "/ui/executions/rows", "/ui/executions/nope", "/ui/static/console.js"):
            r = await client.get(path)
            csp = r.headers.get("content-security-policy", "")
            assert "script-src 'self'" in csp and "default-src 'none'" in csp, path
            assert "unsafe-inline" not in csp, path
            assert r.headers["x-content-type-options"] == "nosniff", path


async def test_data_and_actions_need_a_session(manager: ManagerProcess) -> None:
    async with httpx.AsyncClient(base_url=manager.url) as anonymous:
        for path in ("/ui/executions/rows", "/ui/tasks/t/logs", "/ui/tasks/t/raw",
                     "/ui/executions/e/live"):
            assert (await anonymous.get(path)).status_code == 401, path
        r = await anonymous.post("/ui/executions/e/abort", data={"csrf": "x"})
        assert r.status_code == 401
        # A browser is sent to sign in (and back); whether an id exists is not said.
        for path in ("/ui/delegates", "/ui/executions/no-such-one", "/ui/tasks/no-such"):
            r = await anonymous.get(path, headers={"Accept": "text/html"})
            assert r.status_code == 303, path
            assert r.headers["location"].startswith("/ui/signin?next=%2Fui%2F"), path


async def test_an_action_without_its_csrf_token_is_refused_and_changes_nothing(
        manager: ManagerProcess, api: ManagerApi, token: str) -> None:
    async with DelegateRunner(manager.url, token, tags=("ui",)) as d:
        await d.registered()
        r = await api.client.post("/api/executions", json={
            "name": "csrf", "service": "csrf-svc", "selectors": ["ui"],
            "steps": [{"id": "wait", "type": "test.hang"}]})
        execution_id = r.json()["execution_id"]

        async def running() -> bool:
            view = (await api.client.get(f"/api/executions/{execution_id}")).json()
            return bool(view["runs"]) and view["runs"][0]["status"] == "RUNNING"

        await wait_for(running, what="the step running")
        async with _signed_in(manager) as (client, csrf):
            for given in ({}, {"csrf": ""}, {"csrf": "forged"}):
                for action in ("abort", "rollback"):
                    r = await client.post(f"/ui/executions/{execution_id}/{action}",
                                          data=given)
                    assert r.status_code == 403, (action, given)
            view = (await api.client.get(f"/api/executions/{execution_id}")).json()
            assert view["status"] == "RUNNING"
            r = await client.post(f"/ui/executions/{execution_id}/abort", data={"csrf": csrf})
            assert r.status_code == 303
        assert (await api.wait_execution(execution_id))["status"] == "ABORTED"
