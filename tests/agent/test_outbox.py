from __future__ import annotations

from datetime import UTC, datetime

from agent.outbox import Outbox
from wire.protocol import LogLine, LogPayload, ResultPayload, TaskMessage, TaskStatus


def line(i: int) -> LogPayload:
    return LogPayload(unit="u", lines=[LogLine(ts=datetime.now(UTC), text=f"line {i:05d}")])


def drain_all(outbox: Outbox) -> list[TaskMessage]:
    out: list[TaskMessage] = []
    while batch := outbox.take_unsent():
        out.extend(TaskMessage.model_validate_json(t) for t in batch)
    return out


def test_sequenced_acked_and_resent_after_rewind() -> None:
    ob = Outbox()
    for i in range(10):
        ob.add("t", line(i))
    first = drain_all(ob)
    assert [m.seq for m in first] == list(range(1, 11))
    ob.ack("t", 4)
    ob.rewind({"t": 6})  # reconnect: the manager holds up to 6
    again = drain_all(ob)
    assert [m.seq for m in again] == [7, 8, 9, 10]


def test_spills_to_disk_and_reads_back_in_order(tmp_path) -> None:  # type: ignore[no-untyped-def]
    ob = Outbox(memory_limit=2000, spill_dir=tmp_path)
    for i in range(200):
        ob.add("t", line(i))
    ob.add("t", ResultPayload(status=TaskStatus.SUCCESS))
    assert ob.spilled_total > 150
    assert list(tmp_path.iterdir())
    seen: list[int] = []
    while True:
        batch = drain_all(ob)
        if not batch:
            break
        seen.extend(m.seq for m in batch)
        ob.ack("t", batch[-1].seq)
    assert seen == list(range(1, 202))
    assert ob.buffered == 0
    assert not list(tmp_path.iterdir())


def test_fair_rounds_between_tasks() -> None:
    ob = Outbox(batch_per_task=4)
    for i in range(1000):
        ob.add("flood", line(i))
    ob.add("quiet", ResultPayload(status=TaskStatus.SUCCESS))
    first_round = [TaskMessage.model_validate_json(t).task_id for t in ob.take_unsent()]
    assert "quiet" in first_round
    assert len(first_round) == 5


def test_log_lines_are_counted_through_ack_spill_and_drop(tmp_path) -> None:  # type: ignore[no-untyped-def]
    ob = Outbox(memory_limit=1500, spill_dir=tmp_path)
    for i in range(30):
        ob.add("a", LogPayload(unit="u", lines=[
            LogLine(ts=datetime.now(UTC), text=f"a{i}-{j}") for j in range(3)]))
    ob.add("b", line(0))
    assert ob.spilled_total > 0
    assert ob.lines_buffered == 91
    drain_all(ob)
    ob.ack("a", 10)
    assert (ob.lines_acked, ob.lines_buffered) == (30, 61)
    ob.drop("a")
    assert (ob.lines_dropped, ob.lines_buffered) == (60, 1)


def test_rewind_one_task_on_a_live_connection() -> None:
    ob = Outbox()
    for i in range(6):
        ob.add("t", line(i))
        ob.add("other", line(i))
    drain_all(ob)
    ob.ack("t", 2)
    # The manager holds "t" up to 4 and wants the rest again; "other" is left alone.
    assert ob.rewind_task("t", 4)
    assert [(m.task_id, m.seq) for m in drain_all(ob)] == [("t", 5), ("t", 6)]
    assert ob.last_acked("t") == 4
    # Without a sequence: from the last ack.
    assert ob.rewind_task("t")
    assert [m.seq for m in drain_all(ob)] == [5, 6]
    assert not ob.rewind_task("unknown")


def test_rewind_to_the_last_message_of_a_finished_task_forgets_it() -> None:
    ob = Outbox()
    ob.add("t", line(0))
    ob.add("t", ResultPayload(status=TaskStatus.SUCCESS))
    drain_all(ob)
    assert ob.rewind_task("t", 2)
    assert ob.buffered == 0
    assert drain_all(ob) == []
