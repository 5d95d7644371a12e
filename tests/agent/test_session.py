"""The session against a scripted manager: a real websocket server on loopback in this
test, a real delegate. The manager asks for messages again (``resend``, or an ``error``
naming the task, as the manager sends when storing failed) and the delegate resends them
on the same connection; frames it cannot read cost nothing."""

from __future__ import annotations

from typing import Any

from structlog.testing import capture_logs

from testkit.stack import DelegateRunner, wait_for
from wire.protocol import Assign, Error, Resend, TaskSpec, dump

from .fake_manager import TOKEN, ScriptedManager, ack_all


async def _assign(manager: ScriptedManager, task_id: str, **params: Any) -> None:
    assert manager.current is not None
    await manager.current.send(dump(Assign(task=TaskSpec(task_id=task_id, type="test.echo",
                                                         params=params))))


async def test_resend_sends_a_tasks_messages_again_on_the_live_connection(
        fake: tuple[ScriptedManager, str]) -> None:
    manager, url = fake
    held: dict[str, int] = {}

    def lose_after_the_first(msg: dict[str, Any], seen: int) -> list[str]:
        # The manager keeps seq 1, loses the rest the first time, and asks once for them.
        if msg["seq"] == 1 or seen > 1:
            held[msg["task_id"]] = msg["seq"]
            return ack_all(msg, seen)
        if msg["seq"] == 2:
            return [dump(Resend(task_id=msg["task_id"], after_seq=1))]
        return []

    manager.script = lose_after_the_first
    async with DelegateRunner(url, TOKEN, tags=("x",)) as d:
        await d.registered()
        await _assign(manager, "t-1", note="resend me")
        await wait_for(lambda: d.delegate.outbox.buffered == 0 and "t-1" in held,
                       what="every message of t-1 acked")
        assert manager.connections == 1
        assert d.delegate.session.reconnects == 0
    seqs = manager.seqs("t-1")
    last = max(seqs)
    assert last >= 3  # unit start, log, unit end, result
    # Each message after 1 arrived, and everything after 2 arrived again in order.
    assert sorted(set(seqs)) == list(range(1, last + 1))
    assert seqs.count(1) == 1
    assert held["t-1"] == last


async def test_an_error_naming_the_task_resends_its_unacked_messages(
        fake: tuple[ScriptedManager, str]) -> None:
    manager, url = fake

    def script(msg: dict[str, Any], seen: int) -> list[str]:
        # Storing seq 2 fails once; what follows it is not kept either (a gap) until 2
        # arrives again.
        if msg["seq"] == 2 and seen == 1:
            return [dump(Error(reason="the manager failed to handle this task_msg message "
                                      "(OperationalError); send it again",
                               task_id=msg["task_id"]))]
        if msg["seq"] > 2 and manager.seqs(msg["task_id"]).count(2) < 2:
            return []
        return ack_all(msg, seen)

    manager.script = script
    async with DelegateRunner(url, TOKEN, tags=("x",)) as d:
        await d.registered()
        with capture_logs() as logs:
            await _assign(manager, "t-2")
            await wait_for(lambda: d.delegate.outbox.buffered == 0 and manager.seqs("t-2"),
                           what="every message of t-2 acked")
        assert manager.connections == 1
    assert manager.seqs("t-2").count(2) == 2
    warned = [e for e in logs if e["event"] == "manager reported an error"]
    assert warned and warned[0]["task_id"] == "t-2"


async def test_a_deeply_nested_frame_is_skipped_and_the_session_goes_on(
        fake: tuple[ScriptedManager, str]) -> None:
    manager, url = fake
    async with DelegateRunner(url, TOKEN, tags=("x",)) as d:
        await d.registered()
        assert manager.current is not None
        depth = 100_000
        with capture_logs() as logs:
            await manager.current.send(
                '{"type": "assign", "task": {"task_id": "deep", "type": "test.echo", '
                '"params": {"a": ' + "[" * depth + "]" * depth + "}}}")
            await _assign(manager, "after")
            await wait_for(lambda: manager.seqs("after") and d.delegate.outbox.buffered == 0,
                           what="a task after the nested frame")
        assert not d.failed()
        assert manager.connections == 1
    [skipped] = [e for e in logs if e["event"] == "unreadable message from manager; ignored"]
    assert "recursion limit" in skipped["error"]
    assert manager.seqs("deep") == []
