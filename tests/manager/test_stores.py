"""File store, HTTP log service, log limit, secrets at rest."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
import pytest

from testkit.stack import dump_database
from wire import auth
from wire.protocol import (
    Accept,
    LogLine,
    LogPayload,
    Pull,
    ResultPayload,
    TaskMessage,
    TaskStatus,
)

from .conftest import ADMIN, FakeDelegate, Manager


def _log(*texts: str) -> LogPayload:
    return LogPayload(unit="Deploy", lines=[LogLine(ts=datetime.now(UTC), text=t)
                                            for t in texts])


async def test_file_store_round_trip_and_delegate_read(manager: Manager) -> None:
    path = "account:/ECS Tutorial/RegisterTaskDefinitionRequest.yaml"
    r = await manager.http.put("/api/files", params={"account": "acct1", "path": path},
                               content=b"family: web\n")
    assert r.status_code == 200, r.text
    assert r.json()["path"] == path
    r = await manager.http.get("/api/files/content", params={"account": "acct1", "path": path})
    assert r.content == b"family: web\n"
    listed = (await manager.http.get("/api/files", params={"prefix": "account:/ECS Tutorial"}))
    assert [f["path"] for f in listed.json()["files"]] == [path]

    token = await manager.token("acct1")
    other = await manager.token("acct2")
    async with httpx.AsyncClient(base_url=manager.url) as c:
        def hdr(tok: str, account: str) -> dict[str, str]:
            jwt = auth.sign(tok, account_id=account, delegate_name="d1", audience="files")
            return {"Authorization": f"Bearer {jwt}"}
        r = await c.get("/api/delegate/files", params={"path": path},
                        headers=hdr(token, "acct1"))
        assert r.status_code == 200 and r.content == b"family: web\n"
        r = await c.get("/api/delegate/files", params={"path": path},
                        headers=hdr(other, "acct2"))
        assert r.status_code == 404 and "account acct2" in r.text
        r = await c.get("/api/delegate/files", params={"path": path, "account": "acct1"},
                        headers=hdr(other, "acct2"))
        assert r.status_code == 403 and "account mismatch" in r.text
        # Audience matters: a websocket credential does not open files.
        ws_jwt = auth.sign(token, account_id="acct1", delegate_name="d1")
        r = await c.get("/api/delegate/files", params={"path": path},
                        headers={"Authorization": f"Bearer {ws_jwt}"})
        assert r.status_code == 401
        r = await c.get("/api/files", params={"path": path})
        assert r.status_code == 401 and "MANAGER_ADMIN_TOKEN" in r.text
    r = await manager.http.delete("/api/files", params={"account": "acct1", "path": path})
    assert r.status_code == 204


@pytest.mark.parametrize("bad", ["../etc/passwd", "a/../../b", "/etc/passwd",
                                 "account:/a/../../b", "a\x00b", "C:/x"])
async def test_file_paths_that_escape_are_refused(manager: Manager, bad: str) -> None:
    r = await manager.http.put("/api/files", params={"account": "acct1", "path": bad},
                               content=b"x")
    assert r.status_code == 400 and "path refused" in r.text


async def test_file_size_limit(make_manager) -> None:  # type: ignore[no-untyped-def]
    m = make_manager(max_file_bytes=10)
    await m.start()
    try:
        r = await m.http.put("/api/files", params={"account": "a", "path": "f"},
                             content=b"x" * 11)
        assert r.status_code == 413 and "limit is 10" in r.text
    finally:
        await m.stop()


async def test_log_service_same_semantics_as_websocket(manager: Manager) -> None:
    token = await manager.token()
    d = FakeDelegate(manager, token)
    await d.connect()
    task_id = await manager.submit(selectors=["a"])
    await d.send(Pull(free_slots=1))
    await d.next("assign")
    await d.send(Accept(task_id=task_id))
    await manager.wait_status(task_id, "RUNNING")

    async def post(*msgs: TaskMessage, tok: str = token, name: str = "d1") -> httpx.Response:
        jwt = auth.sign(tok, account_id="acct1", delegate_name=name, audience="logs")
        body = {"messages": [m.model_dump(mode="json") for m in msgs]}
        async with httpx.AsyncClient(base_url=manager.url) as c:
            return await c.post("/api/delegate/logs", json=body,
                                headers={"Authorization": f"Bearer {jwt}"})

    def m(seq: int, payload: object) -> TaskMessage:
        return TaskMessage(task_id=task_id, seq=seq, payload=payload)  # type: ignore[arg-type]

    r = await post(m(1, _log("a")), m(2, _log("b")))
    assert r.json()["acks"] == {task_id: 2}
    r = await post(m(2, _log("b")), m(4, _log("d")))  # duplicate, then a gap
    assert r.json()["acks"] == {task_id: 2}
    r = await post(m(3, _log("c")), m(4, _log("d")),
                   m(5, ResultPayload(status=TaskStatus.SUCCESS)))
    assert r.json()["acks"] == {task_id: 5}
    r = await post(m(6, _log("x")), name="intruder")
    assert "not assigned to this delegate" in r.json()["errors"][task_id]
    await manager.wait_status(task_id, "SUCCESS")
    assert [e["text"] for e in await manager.logs(task_id) if e["kind"] == "log"] == \
        ["a", "b", "c", "d"]


async def test_log_limit_truncation_announced_result_delivered(make_manager) -> None:  # type: ignore[no-untyped-def]
    m = make_manager(max_log_bytes=2048)
    await m.start()
    try:
        d = FakeDelegate(m, await m.token())
        await d.connect()
        task_id = await m.submit(selectors=["a"])
        await d.send(Pull(free_slots=1))
        await d.next("assign")
        await d.send(Accept(task_id=task_id))
        for seq in range(1, 11):
            await d.msg(task_id, seq, _log(*[f"{seq}-{i} " + "x" * 90 for i in range(5)]))
            assert (await d.next("ack")).seq == seq
        await d.msg(task_id, 11, ResultPayload(status=TaskStatus.SUCCESS, output={"k": "v"}))
        assert (await d.next("ack")).seq == 11
        t = await m.wait_status(task_id, "SUCCESS")
        assert t["log_truncated"] and t["output"] == {"k": "v"}
        texts = [e["text"] for e in await m.logs(task_id) if e["kind"] == "log"]
        assert texts[-1].startswith("Log truncated: this task's log reached the manager's "
                                    "limit of 2048 bytes")
        assert sum(1 for x in texts if x.startswith("Log truncated")) == 1
    finally:
        await m.stop()


async def test_database_dump_holds_no_token_or_secret(manager: Manager) -> None:
    token = await manager.token()
    d = FakeDelegate(manager, token)
    await d.connect()
    secret = "hunter2-very-secret-value"
    task_id = await manager.submit(selectors=["a"], secrets={"PASSWORD": secret})
    await d.send(Pull(free_slots=1))
    assign = await d.next("assign")
    assert assign.task.secrets == {"PASSWORD": secret}  # delivered to the delegate only
    view = await manager.task(task_id)
    assert secret not in str(view) and view["secret_names"] == ["PASSWORD"]
    await manager.http.post("/api/executions", json={
        "name": "e", "service": "s", "steps": [{"id": "p", "type": "test.echo"}],
        "secrets": {"X": secret}})
    dump = dump_database(manager.db_url or manager.db)
    for needle in (token, token.split(".")[2], secret, ADMIN,
                   auth.derive_key(token).hex()):
        assert needle not in dump
