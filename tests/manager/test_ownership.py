"""A task belongs to one delegate: (account, name, instance). Ids a delegate chooses —
its instance_id, the task ids it claims to run — never reach another delegate's task
(issue 16, security 1)."""

from __future__ import annotations

from datetime import UTC, datetime

from tests.manager.conftest import FakeDelegate, Manager
from wire.protocol import (
    Accept,
    LogLine,
    LogPayload,
    Pull,
    Reject,
    ResultPayload,
    TaskStatus,
)


def _log(text: str) -> LogPayload:
    return LogPayload(unit="Deploy", lines=[LogLine(ts=datetime.now(UTC), text=text)])


async def test_another_account_cannot_take_a_task_by_its_instance_id(
        manager: Manager) -> None:
    a = FakeDelegate(manager, await manager.token("acct-a"), account="acct-a", name="d")
    await a.connect()
    task_id = await manager.submit(selectors=["a"])
    await a.send(Pull(free_slots=1))
    await a.next("assign")
    await a.send(Accept(task_id=task_id))
    await a.msg(task_id, 1, _log("from a"))
    assert (await a.next("ack")).seq == 1
    # B copies A's instance id and name and claims A's task.
    b = FakeDelegate(manager, await manager.token("acct-b"), account="acct-b", name="d",
                     instance_id=a.instance_id)
    registered = await b.connect(running=[task_id])
    assert registered.acked == {}
    assert registered.cancel == {task_id: "this task is not assigned to this delegate"}
    for msg in (Accept(task_id=task_id), Reject(task_id=task_id, reason="mine")):
        await b.send(msg)
        assert "not assigned to this delegate" in (await b.next("error")).reason
    await b.msg(task_id, 2, _log("from b"))
    assert "not assigned to this delegate" in (await b.next("error")).reason
    await b.msg(task_id, 2, ResultPayload(status=TaskStatus.FAILED, error="forged"))
    assert "not assigned to this delegate" in (await b.next("error")).reason
    # A's task is untouched, and A's session was not replaced.
    t = await manager.task(task_id)
    assert t["status"] == "RUNNING" and t["last_seq"] == 1
    await a.msg(task_id, 2, ResultPayload(status=TaskStatus.SUCCESS))
    assert (await a.next("ack")).seq == 2
    t = await manager.task(task_id)
    assert t["status"] == "SUCCESS" and t["error"] is None
    texts = [e["text"] for e in await manager.logs(task_id) if e["kind"] == "log"]
    assert texts == ["from a"]
    assert a.close_code is None
    await b.close()
    await a.close()


async def test_another_delegate_of_the_account_cannot_resume_a_task(manager: Manager) -> None:
    token = await manager.token()
    d1 = FakeDelegate(manager, token, name="d1")
    await d1.connect()
    task_id = await manager.submit(selectors=["a"])
    await d1.send(Pull(free_slots=1))
    await d1.next("assign")
    await d1.send(Accept(task_id=task_id))
    await manager.wait_status(task_id, "RUNNING")
    # Same account, another name, the same instance id: still not the owner, and its
    # registration (which lists no tasks) does not make d1's task LOST.
    d2 = FakeDelegate(manager, token, name="d2", instance_id=d1.instance_id)
    registered = await d2.connect(running=[task_id])
    assert task_id in registered.cancel
    d3 = FakeDelegate(manager, token, name="d3", instance_id=d1.instance_id)
    await d3.connect()
    assert (await manager.task(task_id))["status"] == "RUNNING"
    delegates = (await manager.http.get("/api/delegates")).json()["delegates"]
    running = {x["name"]: x["running_tasks"] for x in delegates}
    assert running == {"d1": 1, "d2": 0, "d3": 0}
    for d in (d3, d2, d1):
        await d.close()
