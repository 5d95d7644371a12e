"""Delegate core and manager protocol, end to end: the real manager process, real
delegates, real websockets on loopback."""

from __future__ import annotations

import asyncio

import pytest

from agent.errors import ManagerRefused
from testkit.stack import (
    RUNS,
    DelegateRunner,
    ManagerApi,
    ManagerProcess,
    dump_database,
    gate,
    log_texts,
    wait_for,
)


async def test_task_runs_only_on_a_delegate_with_all_selected_tags(
        api: ManagerApi, manager: ManagerProcess, token: str) -> None:
    async with DelegateRunner(manager.url, token, name="only-b", tags=("b",)) as b:
        await b.registered()
        task_id = await api.submit({"type": "test.echo", "selectors": ["a"], "params": {}})
        # Nobody can take it: the task says so, naming the missing tag.
        task = await wait_for(lambda: _waiting(api, task_id), what="a waiting reason")
        assert "a" in task["waiting_reason"]
        assert task["status"] == "QUEUED"
        async with DelegateRunner(manager.url, token, name="a-and-b", tags=("a", "b")) as ab:
            await ab.registered()
            done = await api.wait_finished(task_id)
    assert done["status"] == "SUCCESS"
    assert done["delegate_name"] == "a-and-b"


async def _waiting(api: ManagerApi, task_id: str) -> dict[str, object] | None:
    task = await api.task(task_id)
    return task if task.get("waiting_reason") else None


async def test_twenty_tasks_two_delegates_each_runs_exactly_once(
        api: ManagerApi, manager: ManagerProcess, token: str) -> None:
    async with DelegateRunner(manager.url, token, name="d1", tags=("x",), capacity=1) as d1, \
            DelegateRunner(manager.url, token, name="d2", tags=("x",), capacity=1) as d2:
        await d1.registered()
        await d2.registered()
        ids = [await api.submit({"type": "test.echo", "selectors": ["x"],
                                 "params": {"delay": 0.01}}) for _ in range(20)]
        results = [await api.wait_finished(i) for i in ids]
    assert all(r["status"] == "SUCCESS" for r in results)
    assert all(RUNS.get(i) == 1 for i in ids), {i: RUNS.get(i) for i in ids}
    ran = d1.delegate.runner.stats.finished, d2.delegate.runner.stats.finished
    assert sum(n for stats in ran for n in stats.values()) == 20
    assert all(stats for stats in ran), "both delegates should have run tasks"


@pytest.mark.parametrize(("case", "expected"), [
    ("wrong-token", "token does not match"),
    ("revoked", "token revoked"),
    ("wrong-account", "account"),
])
async def test_refused_with_a_clear_reason_and_token_never_shown(
        api: ManagerApi, manager: ManagerProcess, token: str, case: str, expected: str,
        capfd: pytest.CaptureFixture[str]) -> None:
    account, used = "acme", token
    if case == "wrong-token":
        used = f"edt.{token.split('.')[1]}.{'x' * 43}"
    elif case == "revoked":
        await api.revoke_token(token)
    else:
        account = "other-account"
    runner = DelegateRunner(manager.url, used, account=account)
    with pytest.raises(ManagerRefused, match=expected):
        await asyncio.wait_for(runner.delegate.run(), timeout=20)
    out = capfd.readouterr()
    answers = "".join([(await api.client.get("/api/delegates")).text,
                       (await api.client.get("/api/tokens")).text])
    everything = out.out + out.err + manager.log_text() + answers + dump_database(manager.db)
    for value in {token, used}:
        assert value not in everything
        assert value.split(".")[2] not in everything


async def test_revoking_a_token_disconnects_its_delegates(
        api: ManagerApi, manager: ManagerProcess, token: str) -> None:
    async with DelegateRunner(manager.url, token) as d:
        await d.registered()
        await api.revoke_token(token)
        await wait_for(d.failed, what="the delegate to be disconnected")
        assert d.task is not None
        assert isinstance(d.task.exception(), ManagerRefused)
        assert "revoked" in str(d.task.exception())


async def _stream_and_disrupt(api: ManagerApi, manager: ManagerProcess, token: str,
                              disrupt: str) -> None:
    n = 10_000
    async with DelegateRunner(manager.url, token, tags=("x",)) as d:
        await d.registered()
        # Lines 0-5999 go out in bursts; the task stops at 6000 with the last burst
        # still in flight, the connection is disrupted, then the rest follows.
        task_id = await api.submit({"type": "test.flood", "selectors": ["x"],
                                    "params": {"lines": n, "pause_every": 3000,
                                               "gate_at": 6000}})
        reached, opened = gate(task_id)
        await asyncio.wait_for(reached.wait(), 20)
        assert d.delegate.outbox.buffered > 0, "the disruption should catch unacked messages"
        if disrupt == "drop":
            ws = d.delegate.session._ws
            assert ws is not None
            ws.transport.abort()
        else:
            await asyncio.to_thread(manager.kill)
            await asyncio.to_thread(manager.start)
        opened.set()
        done = await api.wait_finished(task_id, timeout=60)
    assert done["status"] == "SUCCESS", done
    entries = await api.logs(task_id)
    lines = [t for t in log_texts(entries) if t.startswith("line ")]
    assert lines == [f"line {i:06d}" for i in range(n)]
    results = [e for e in entries if e.get("kind") == "result"]
    assert len(results) == 1


async def test_dropped_connection_loses_and_duplicates_nothing(
        api: ManagerApi, manager: ManagerProcess, token: str) -> None:
    await _stream_and_disrupt(api, manager, token, "drop")


async def test_manager_restart_loses_and_duplicates_nothing(
        api: ManagerApi, manager: ManagerProcess, token: str) -> None:
    await _stream_and_disrupt(api, manager, token, "restart")


async def test_abort_timeout_and_a_bad_handler_leave_other_tasks_alone(
        api: ManagerApi, manager: ManagerProcess, token: str) -> None:
    async with DelegateRunner(manager.url, token, tags=("x",), capacity=5) as d:
        await d.registered()
        hang = await api.submit({"type": "test.hang", "selectors": ["x"]})
        timed = await api.submit({"type": "test.hang", "selectors": ["x"], "timeout": "1s"})
        boom = await api.submit({"type": "test.boom", "selectors": ["x"]})
        echo = await api.submit({"type": "test.echo", "selectors": ["x"],
                                 "params": {"delay": 0.5}})
        await wait_for(lambda: d.delegate.runner.is_running(hang), what="hang to start")
        await api.abort(hang)
        aborted = await api.wait_finished(hang, timeout=10)
        assert aborted["status"] == "ABORTED"
        assert aborted["output"]["started"] is True  # outputs survive an abort
        t = await api.wait_finished(timed, timeout=15)
        assert t["status"] == "TIMED_OUT"
        b = await api.wait_finished(boom)
        assert b["status"] == "FAILED"
        assert "RuntimeError: handler bug" in (b.get("error") or "")
        e = await api.wait_finished(echo)
        assert e["status"] == "SUCCESS"


async def test_unknown_task_type_fails_clearly(api: ManagerApi, manager: ManagerProcess,
                                               token: str) -> None:
    async with DelegateRunner(manager.url, token, tags=("x",)) as d:
        await d.registered()
        task_id = await api.submit({"type": "no.such.type", "selectors": ["x"]})
        task = await wait_for(lambda: _waiting(api, task_id), what="a waiting reason")
    assert "no.such.type" in task["waiting_reason"]
