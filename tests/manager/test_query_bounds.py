"""Numeric query parameters are bounded (a 4xx, not a 200 broken off mid-body), and the
OpenAPI document names the error answers each route gives."""

from __future__ import annotations

import pytest

from tests.manager.conftest import Manager


@pytest.mark.parametrize("query", ["after=99999999999999999999999", "after=-1",
                                   "after=1e5", "after=nan"])
async def test_log_after_out_of_range_is_422(manager: Manager, query: str) -> None:
    task_id = await manager.submit(selectors=["nobody"])
    r = await manager.http.get(f"/api/tasks/{task_id}/logs?{query}")
    assert r.status_code == 422, r.text
    assert r.json()["detail"][0]["loc"] == ["query", "after"]


@pytest.mark.parametrize("path", ["/api/delegates?older_than=inf",
                                  "/api/delegates?older_than=nan",
                                  "/api/delegates?older_than=1e300",
                                  "/api/tasks?limit=99999999999999999999",
                                  "/api/executions/x?wait=inf"])
async def test_other_numbers_out_of_range_are_422(manager: Manager, path: str) -> None:
    method = "DELETE" if path.startswith("/api/delegates") else "GET"
    r = await manager.http.request(method, path)
    assert r.status_code == 422, r.text


async def test_openapi_documents_error_answers(manager: Manager) -> None:
    paths = (await manager.http.get("/openapi.json")).json()["paths"]
    assert {"401", "404"} <= set(paths["/api/tasks/{task_id}"]["get"]["responses"])
    assert {"400", "401", "409", "413"} <= set(paths["/api/tasks"]["post"]["responses"])
    assert {"401", "404", "409"} <= set(
        paths["/api/executions/{execution_id}/rollback"]["post"]["responses"])
    assert {"400", "401", "413"} <= set(paths["/api/delegate/logs"]["post"]["responses"])
    assert "404" in paths["/api/files/content"]["get"]["responses"]


async def test_openapi_documents_delegate_file_answers(manager: Manager) -> None:
    paths = (await manager.http.get("/openapi.json")).json()["paths"]
    assert {"400", "401", "403", "404"} <= set(
        paths["/api/delegate/files"]["get"]["responses"])
