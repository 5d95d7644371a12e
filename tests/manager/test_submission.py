"""Submissions under retries and size limits, and task messages under a database fault:
the real manager on a loopback port, fake delegates on real websockets (issue 16)."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest

from manager.dispatch import ASSIGN_LIMIT
from manager.taskstore import NewTask
from testkit.stack import dump_database
from tests.manager.conftest import FakeDelegate, Manager
from wire.protocol import (
    MAX_MESSAGE_BYTES,
    Accept,
    LogLine,
    LogPayload,
    Pull,
    ResultPayload,
    TaskStatus,
)


def _execution(n: int = 1) -> dict[str, Any]:
    return {"name": "deploy myapp", "selectors": ["a"], "service": "myapp",
            "infrastructure": {"region": "us-east-1", "cluster": "c1"},
            "steps": [{"id": "P1", "type": "test.echo", "params": {"n": n}}]}


async def _task_count(manager: Manager) -> int:
    r = await manager.http.get("/api/tasks", params={"limit": 1000})
    return len(r.json()["tasks"])


async def test_a_retried_task_submission_creates_one_task(make_manager) -> None:  # type: ignore[no-untyped-def]
    m: Manager = make_manager()
    await m.start()
    body = {"type": "test.echo", "selectors": ["a"], "params": {"n": 1},
            "secrets": {"S": "value-1"}}
    key = {"Idempotency-Key": "retry-me-1"}
    first = await m.http.post("/api/tasks", json=body, headers=key)
    again = await m.http.post("/api/tasks", json=body, headers=key)
    assert first.status_code == again.status_code == 201, (first.text, again.text)
    assert again.json() == first.json()
    assert await _task_count(m) == 1
    other = await m.http.post("/api/tasks", json={**body, "params": {"n": 2}}, headers=key)
    assert other.status_code == 409
    assert "already used for a different task submission" in other.json()["detail"]
    # Another account has its own keys.
    elsewhere = await m.http.post("/api/tasks", json={**body, "account_id": "b"}, headers=key)
    assert elsewhere.status_code == 201
    assert elsewhere.json()["task_id"] != first.json()["task_id"]
    await m.stop()
    # Keys survive a restart.
    m2: Manager = make_manager()
    await m2.start()
    replay = await m2.http.post("/api/tasks", json=body, headers=key)
    assert replay.status_code == 201 and replay.json()["task_id"] == first.json()["task_id"]
    assert await _task_count(m2) == 2
    await m2.stop()
    assert "value-1" not in dump_database(m.db_url or m.db)


async def test_a_retried_execution_submission_creates_one_execution(manager: Manager) -> None:
    key = {"Idempotency-Key": "exe-key"}
    first = await manager.http.post("/api/executions", json=_execution(), headers=key)
    again = await manager.http.post("/api/executions", json=_execution(), headers=key)
    assert first.status_code == again.status_code == 201, (first.text, again.text)
    assert again.json()["execution_id"] == first.json()["execution_id"]
    listed = (await manager.http.get("/api/executions")).json()["executions"]
    assert len(listed) == 1 and await _task_count(manager) == 1
    other = await manager.http.post("/api/executions", json=_execution(2), headers=key)
    assert other.status_code == 409 and "execution" in other.json()["detail"]


async def test_a_bad_idempotency_key_is_refused(manager: Manager) -> None:
    r = await manager.http.post("/api/tasks", json={"type": "test.echo"},
                                headers={"Idempotency-Key": "k" * 201})
    assert r.status_code == 400 and "Idempotency-Key" in r.json()["detail"]


async def test_a_task_too_large_for_the_wire_is_refused_at_submission(manager: Manager) -> None:
    r = await manager.http.post("/api/tasks", json={
        "type": "test.echo", "params": {"blob": "x" * MAX_MESSAGE_BYTES}})
    assert r.status_code == 413
    assert f"over the limit of {ASSIGN_LIMIT} bytes" in r.json()["detail"]
    assert await _task_count(manager) == 0


async def test_an_execution_with_a_step_too_large_is_refused(manager: Manager) -> None:
    body = _execution()
    body["steps"][0]["params"] = {"blob": "x" * MAX_MESSAGE_BYTES}
    r = await manager.http.post("/api/executions", json=body)
    assert r.status_code == 413 and r.json()["detail"].startswith("step P1: the task is")
    assert (await manager.http.get("/api/executions")).json()["executions"] == []


async def test_an_unsendable_assign_fails_its_task_and_the_delegate_keeps_serving(
        manager: Manager) -> None:
    assert manager.server is not None
    hub = manager.server.state.hub
    # Executions create tasks without the API's check (their params are rendered
    # later); the dispatcher is the last line.
    big = hub.submit(NewTask(type="test.echo", selectors=["a"], secrets={},
                             params={"blob": "x" * MAX_MESSAGE_BYTES}, context={},
                             timeout=60))
    small = await manager.submit(selectors=["a"])
    d = FakeDelegate(manager, await manager.token())
    await d.connect()
    await d.send(Pull(free_slots=2))
    assign = await d.next("assign")
    assert assign.task.task_id == small
    failed = await manager.wait_status(big, "FAILED")
    assert "over the limit" in failed["error"] and "file store" in failed["error"]
    await d.send(Accept(task_id=small))
    await d.msg(small, 1, ResultPayload(status=TaskStatus.SUCCESS))
    assert (await d.next("ack")).seq == 1
    assert (await manager.task(small))["status"] == "SUCCESS"
    assert d.close_code is None


@pytest.mark.sqlite_only  # another SQLite writer holds the file's lock
async def test_a_message_the_manager_could_not_store_is_asked_for_again(
        manager: Manager, tmp_path: Path) -> None:
    d = FakeDelegate(manager, await manager.token())
    await d.connect()
    task_id = await manager.submit(selectors=["a"])
    await d.send(Pull(free_slots=1))
    await d.next("assign")
    await d.send(Accept(task_id=task_id))
    await manager.wait_status(task_id, "RUNNING")
    line = LogPayload(unit="Deploy", lines=[LogLine(ts="2026-01-01T00:00:00Z", text="one")])
    await d.msg(task_id, 1, line)
    assert (await d.next("ack")).seq == 1
    # Another writer holds the database: the manager cannot store message 2.
    other = sqlite3.connect(manager.db, isolation_level=None)
    other.execute("BEGIN EXCLUSIVE")
    try:
        await d.msg(task_id, 2, line)
        resend = await d.next("resend", timeout=15)
    finally:
        other.execute("ROLLBACK")
        other.close()
    assert resend.task_id == task_id and resend.after_seq == 1
    await d.msg(task_id, 2, line)
    assert (await d.next("ack")).seq == 2
    texts = [e["text"] for e in await manager.logs(task_id) if e["kind"] == "log"]
    assert texts == ["one", "one"]
