"""The delegate websocket, driven by a fake delegate speaking wire.protocol."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from wire import auth
from wire.protocol import (
    CLOSE_AUTH_FAILED,
    CLOSE_REVOKED,
    MAX_MESSAGE_BYTES,
    Accept,
    Heartbeat,
    LogLine,
    LogPayload,
    Pull,
    Reject,
    ResultPayload,
    TaskStatus,
    UnitPayload,
    UnitStatus,
)

from .conftest import FakeDelegate, Manager, wait_for


def _now() -> datetime:
    return datetime.now(UTC)


def _log(*texts: str, unit: str = "Deploy") -> LogPayload:
    return LogPayload(unit=unit, lines=[LogLine(ts=_now(), text=t) for t in texts])


async def test_register_ok_and_listed(manager: Manager) -> None:
    d = FakeDelegate(manager, await manager.token(), tags=("a", "b"))
    reg = await d.connect()
    assert reg.type == "registered"
    assert reg.heartbeat_interval == 10 and reg.lease_ttl == 30
    delegates = (await manager.http.get("/api/delegates")).json()["delegates"]
    assert [(x["name"], x["state"], x["tags"]) for x in delegates] == \
        [("d1", "connected", ["a", "b"])]
    await d.send(Heartbeat(running_tasks=[], sent_at=_now()))
    assert (await d.next("heartbeat_ack")).type == "heartbeat_ack"
    await d.close()
    await wait_for(lambda: _state(manager, "disconnected"), what="disconnected")


async def _state(manager: Manager, state: str) -> bool:
    delegates = (await manager.http.get("/api/delegates")).json()["delegates"]
    return all(x["state"] == state for x in delegates)


@pytest.mark.parametrize("case", ["wrong-token", "wrong-account", "unknown-token", "garbage"])
async def test_register_refused(manager: Manager, case: str) -> None:
    token = await manager.token("acct1")
    other = await manager.token("acct2")
    d = FakeDelegate(manager, token)
    if case == "wrong-token":
        # Right token id, wrong secret: the signature does not match.
        forged = token.rsplit(".", 1)[0] + "." + "x" * 43
        jwt = auth.sign(forged, account_id="acct1", delegate_name="d1")
        reply = await d.connect(auth_jwt=jwt)
        assert "token does not match" in reply.reason
    elif case == "wrong-account":
        d = FakeDelegate(manager, other, account="acct2")
        reply = await d.connect(account="acct1",
                                auth_jwt=auth.sign(other, account_id="acct1",
                                                   delegate_name="d1"))
        assert reply.reason == "account mismatch: token is for account acct2"
    elif case == "unknown-token":
        ghost, _ = auth.new_token()
        reply = await d.connect(auth_jwt=auth.sign(ghost, account_id="acct1",
                                                   delegate_name="d1"))
        assert reply.reason.startswith("unknown token")
    else:
        reply = await d.connect(auth_jwt="not-a-jwt")
        assert "not a signed delegate credential" in reply.reason
    assert reply.type == "refused" and reply.fatal
    assert token not in reply.reason and other not in reply.reason
    with pytest.raises(ConnectionError):
        await d.next()
    assert d.close_code == CLOSE_AUTH_FAILED


async def test_replayed_credential_refused(manager: Manager) -> None:
    token = await manager.token()
    jwt = auth.sign(token, account_id="acct1", delegate_name="d1")
    first = FakeDelegate(manager, token)
    assert (await first.connect(auth_jwt=jwt)).type == "registered"
    second = FakeDelegate(manager, token)
    reply = await second.connect(auth_jwt=jwt)
    assert reply.type == "refused" and "replay" in reply.reason
    await first.close()


async def test_revoke_disconnects_live_session(manager: Manager) -> None:
    token = await manager.token()
    d = FakeDelegate(manager, token)
    await d.connect()
    token_id = auth.parse_token(token).token_id
    r = await manager.http.delete(f"/api/tokens/{token_id}")
    assert r.status_code == 200 and r.json()["revoked_at"]
    msg = await d.next("disconnect")
    assert msg.fatal and "revoked" in msg.reason
    with pytest.raises(ConnectionError):
        await d.next()
    assert d.close_code == CLOSE_REVOKED
    again = FakeDelegate(manager, token)
    reply = await again.connect()
    assert reply.type == "refused" and reply.reason.startswith("token revoked")
    listed = (await manager.http.get("/api/tokens")).json()["tokens"]
    assert token not in json.dumps(listed)


async def test_pull_assigns_by_selectors_exactly_once(manager: Manager) -> None:
    token = await manager.token()
    b_only = FakeDelegate(manager, token, name="b-only", tags=("b",), capacity=5)
    ab = FakeDelegate(manager, token, name="ab", tags=("a", "b"), capacity=1)
    await b_only.connect()
    await ab.connect()
    await b_only.send(Pull(free_slots=5))
    task_ids = [await manager.submit(selectors=["a"]) for _ in range(3)]
    # No credit yet on the [a, b] delegate: all three wait, with a reason.
    first = await manager.task(task_ids[0])
    assert first["status"] == "QUEUED"
    assert first["waiting_reason"] == "waiting for a free slot on: ab"
    got = []
    for _ in task_ids:
        await ab.send(Pull(free_slots=1))
        assign = await ab.next("assign")
        got.append(assign.task.task_id)
        await ab.send(Accept(task_id=assign.task.task_id))
    assert got == task_ids  # oldest first, each once
    assert not [m for m in b_only.received if m.type == "assign"]
    t = await manager.wait_status(task_ids[0], "RUNNING")
    assert t["delegate_name"] == "ab"


async def test_waiting_reason_names_missing_tags(manager: Manager) -> None:
    d = FakeDelegate(manager, await manager.token(), tags=("a", "b"))
    await d.connect()
    task_id = await manager.submit(selectors=["a", "x"])
    t = await manager.task(task_id)
    assert t["waiting_reason"] == "no connected delegate has tags [x]; connected: d1 [a, b]"
    other = await manager.submit(type="unknown.type", selectors=["a"])
    assert "supports task type 'unknown.type'" in (await manager.task(other))["waiting_reason"]


async def test_reject_and_disconnect_requeue(manager: Manager) -> None:
    token = await manager.token()
    d = FakeDelegate(manager, token)
    await d.connect()
    task_id = await manager.submit(selectors=["a"])
    await d.send(Pull(free_slots=1))
    assert (await d.next("assign")).task.task_id == task_id
    await d.send(Reject(task_id=task_id, reason="no free slot"))
    t = await manager.wait_status(task_id, "QUEUED")
    assert t["waiting_reason"] == "rejected by delegate d1: no free slot"
    await d.send(Pull(free_slots=1))
    assert (await d.next("assign")).task.task_id == task_id
    await d.close()  # assigned, never accepted: back to the queue
    await manager.wait_status(task_id, "QUEUED")
    d2 = FakeDelegate(manager, token, name="d2")
    await d2.connect()
    await d2.send(Pull(free_slots=1))
    assert (await d2.next("assign")).task.task_id == task_id


async def _running(manager: Manager, d: FakeDelegate, **task: object) -> str:
    task_id = await manager.submit(selectors=["a"], **task)
    await d.send(Pull(free_slots=1))
    assign = await d.next("assign")
    assert assign.task.task_id == task_id
    await d.send(Accept(task_id=task_id))
    await manager.wait_status(task_id, "RUNNING")
    return task_id


async def test_seq_dedupe_gap_and_result_once(manager: Manager) -> None:
    d = FakeDelegate(manager, await manager.token())
    await d.connect()
    task_id = await _running(manager, d)
    await d.msg(task_id, 1, UnitPayload(unit="Deploy", status=UnitStatus.RUNNING,
                                        started_at=_now()))
    assert (await d.next("ack")).seq == 1
    await d.msg(task_id, 2, _log("one", "two"))
    assert (await d.next("ack")).seq == 2
    await d.msg(task_id, 2, _log("one", "two"))  # duplicate
    assert (await d.next("ack")).seq == 2
    await d.msg(task_id, 4, _log("four"))  # gap: nothing stored, ack says resend from 3
    assert (await d.next("ack")).seq == 2
    await d.msg(task_id, 3, _log("three"))
    assert (await d.next("ack")).seq == 3
    await d.msg(task_id, 4, _log("four"))
    assert (await d.next("ack")).seq == 4
    await d.msg(task_id, 5, ResultPayload(status=TaskStatus.SUCCESS, output={"arn": "x"}))
    assert (await d.next("ack")).seq == 5
    await d.msg(task_id, 6, ResultPayload(status=TaskStatus.FAILED, error="late"))
    assert (await d.next("ack")).seq == 6
    t = await manager.task(task_id)
    assert t["status"] == "SUCCESS" and t["output"] == {"arn": "x"} and t["error"] is None
    assert [u["status"] for u in t["units"]] == ["RUNNING"]
    entries = await manager.logs(task_id)
    assert [e.get("text") for e in entries if e["kind"] == "log"] == \
        ["one", "two", "three", "four"]
    assert [e["status"] for e in entries if e["kind"] == "result"] == ["SUCCESS"]


async def test_message_for_task_of_another_delegate(manager: Manager) -> None:
    token = await manager.token()
    d1 = FakeDelegate(manager, token)
    d2 = FakeDelegate(manager, token, name="d2")
    await d1.connect()
    await d2.connect()
    task_id = await _running(manager, d1)
    await d2.msg(task_id, 1, _log("intruder"))
    err = await d2.next("error")
    assert err.task_id == task_id and "not assigned to this delegate" in err.reason
    assert await manager.logs(task_id) == []


@pytest.mark.parametrize("frame,expected", [
    ("{not json", "message is not JSON"),
    ('{"type": "bogus"}', "unknown message type 'bogus'"),
    ('{"type": "pull", "free_slots": -1}', "invalid pull message: free_slots"),
    ('[1, 2]', "not a JSON object with a 'type' field"),
    ("x" * (MAX_MESSAGE_BYTES + 1), "over the limit"),
])
async def test_bad_frames_get_error_and_session_survives(manager: Manager, frame: str,
                                                         expected: str) -> None:
    d = FakeDelegate(manager, await manager.token())
    await d.connect()
    task_id = await _running(manager, d)
    await d.send(frame)
    err = await d.next("error")
    assert expected in err.reason
    await d.msg(task_id, 1, ResultPayload(status=TaskStatus.SUCCESS))
    assert (await d.next("ack")).seq == 1
    assert (await manager.task(task_id))["status"] == "SUCCESS"


async def test_restart_keeps_messages_and_resumes(make_manager) -> None:  # type: ignore[no-untyped-def]
    m = make_manager()
    await m.start()
    token = await m.token()
    d = FakeDelegate(m, token)
    await d.connect()
    task_id = await _running(m, d)
    for seq in range(1, 51):
        await d.msg(task_id, seq, _log(f"line {seq}"))
    await wait_for(lambda: _acked(d, task_id, 50), what="ack 50")
    await m.stop()
    await d.close()
    m2 = make_manager()
    m2.server = None
    await m2.start()
    try:
        d.inbox = type(d.inbox)()
        d.manager = m2
        reg = await d.connect(running=[task_id])
        assert reg.acked == {task_id: 50} and reg.cancel == {}
        await d.msg(task_id, 50, _log("line 50"))  # resent duplicate
        await d.msg(task_id, 51, ResultPayload(status=TaskStatus.SUCCESS))
        await wait_for(lambda: _acked(d, task_id, 51), what="ack 51")
        t = await m2.wait_status(task_id, "SUCCESS")
        assert t["last_seq"] == 51
        texts = [e["text"] for e in await m2.logs(task_id) if e["kind"] == "log"]
        assert texts == [f"line {i}" for i in range(1, 51)]
    finally:
        await m2.stop()


async def _acked(d: FakeDelegate, task_id: str, seq: int) -> bool:
    return any(m.type == "ack" and m.task_id == task_id and m.seq >= seq for m in d.received)


async def test_register_reconciles_running_tasks(manager: Manager) -> None:
    token = await manager.token()
    d = FakeDelegate(manager, token)
    await d.connect()
    kept = await _running(manager, d)
    dropped = await _running(manager, d)
    await d.close()
    await manager.wait_status(kept, "RUNNING")
    d.inbox = type(d.inbox)()
    reg = await d.connect(running=[kept, "task-nosuch"])
    assert reg.acked == {kept: 0}
    assert "unknown task" in reg.cancel["task-nosuch"]
    t = await manager.wait_status(dropped, "LOST")
    assert "reconnected without this task" in t["error"]


async def test_lease_expiry_marks_lost(make_manager) -> None:  # type: ignore[no-untyped-def]
    m = make_manager(lease_ttl=0.3, reconnect_grace=0)
    await m.start()
    try:
        d = FakeDelegate(m, await m.token())
        reg = await d.connect()
        assert reg.lease_ttl == 0.3
        task_id = await _running(m, d)
        await d.close()
        t = await m.wait_status(task_id, "LOST")
        assert t["error"] == "delegate d1 stopped answering; its tasks are presumed lost"
        result = [e for e in await m.logs(task_id) if e["kind"] == "result"]
        assert [r["status"] for r in result] == ["LOST"]
    finally:
        await m.stop()


async def test_abort_queued_assigned_running(manager: Manager) -> None:
    d = FakeDelegate(manager, await manager.token())
    await d.connect()
    queued = await manager.submit(selectors=["nope"])
    r = await manager.http.post(f"/api/tasks/{queued}/abort")
    assert r.json()["status"] == "ABORTED"
    running = await _running(manager, d)
    r = await manager.http.post(f"/api/tasks/{running}/abort", json={"reason": "stop it"})
    assert r.json()["status"] == "RUNNING"
    abort = await d.next("abort")
    assert abort.task_id == running and abort.reason == "stop it"
    await d.msg(running, 1, ResultPayload(status=TaskStatus.ABORTED, error="aborted"))
    await manager.wait_status(running, "ABORTED")


async def test_manager_times_out_silent_running_task(make_manager) -> None:  # type: ignore[no-untyped-def]
    m = make_manager(lease_ttl=0.2, reconnect_grace=0)
    await m.start()
    try:
        d = FakeDelegate(m, await m.token())
        await d.connect()
        task_id = await _running(m, d, timeout=0.1)
        # The delegate keeps its lease alive but never sends a result.
        async def beat() -> bool:
            await d.send(Heartbeat(running_tasks=[task_id], sent_at=_now()))
            return (await m.task(task_id))["status"] == "TIMED_OUT"
        await wait_for(beat, what="TIMED_OUT")
        assert (await d.next("abort")).reason == "timed out"
    finally:
        await m.stop()


async def test_draining_gets_no_work(manager: Manager) -> None:
    from wire.protocol import Draining

    d = FakeDelegate(manager, await manager.token())
    await d.connect()
    await d.send(Draining())
    await d.send(Pull(free_slots=1))
    task_id = await manager.submit(selectors=["a"])
    await wait_for(lambda: _state(manager, "draining"), what="draining")
    t = await manager.task(task_id)
    assert t["status"] == "QUEUED" and "draining" in t["waiting_reason"]
