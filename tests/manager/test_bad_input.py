"""Bad input against a real manager: every answer is a 4xx naming the field, never a 500,
and never an echo of what was submitted (it may be a secret)."""

from __future__ import annotations

import pytest

from tests.manager.conftest import Manager


@pytest.mark.parametrize("timeout", ["NaN", "inf", "-inf", "1e20", -5, "8d", 1e20])
async def test_unusable_task_timeout_is_422_naming_the_field(manager: Manager,
                                                             timeout: object) -> None:
    r = await manager.http.post("/api/tasks", json={"type": "test.echo", "timeout": timeout})
    assert r.status_code == 422, r.text
    detail = r.json()["detail"]
    assert any("timeout" in [str(p) for p in d["loc"]] for d in detail), detail


async def test_unusable_step_timeout_is_422(manager: Manager) -> None:
    body = {"name": "e", "service": "s", "steps": [
        {"id": "a", "type": "test.echo", "timeout": "nan"}]}
    r = await manager.http.post("/api/executions", json=body)
    assert r.status_code == 422, r.text


async def test_a_422_does_not_echo_submitted_values(manager: Manager) -> None:
    secret = "AKIA-very-secret-value-123"
    r = await manager.http.post("/api/tasks", json={
        "type": "test.echo", "secrets": {"k": 1}, "params": secret, "extra": secret})
    assert r.status_code == 422, r.text
    assert secret not in r.text
    for d in r.json()["detail"]:
        assert set(d) == {"loc", "msg", "type"}, d


async def test_abort_answer_does_not_echo_params(manager: Manager) -> None:
    bulky = "p" * 200_000
    queued = await manager.submit(selectors=["nobody-has-this"], params={"blob": bulky})
    r = await manager.http.post(f"/api/tasks/{queued}/abort")
    assert r.status_code == 200, r.text
    assert r.json() == {"task_id": queued, "status": "ABORTED", "already_finished": False,
                        "message": f"task {queued} aborted"}
    again = await manager.http.post(f"/api/tasks/{queued}/abort")
    assert again.json()["already_finished"] is True
    assert "had already finished (ABORTED)" in again.json()["message"]
    assert len(again.content) < 1000
