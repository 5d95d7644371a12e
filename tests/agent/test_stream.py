"""What a task emits on its way to the outbox: masked, clipped, batched, in order."""

from __future__ import annotations

from datetime import UTC, datetime

from agent.masking import MASK, Masker
from agent.outbox import Outbox
from agent.stream import MAX_LINE_CHARS, MAX_OUTPUT_CHARS, TaskStream, fit_output
from testkit.stack import wait_for
from wire.protocol import (
    EventPayload,
    LogLine,
    LogPayload,
    ResultPayload,
    TaskMessage,
    TaskStatus,
    UnitPayload,
    UnitStatus,
)

SECRET = "stream-secret-value-7"
NOW = datetime(2026, 1, 1, tzinfo=UTC)


def log(unit: str, *texts: str) -> LogPayload:
    return LogPayload(unit=unit, lines=[LogLine(ts=NOW, text=t) for t in texts])


def sent(outbox: Outbox) -> list[TaskMessage]:
    out: list[TaskMessage] = []
    while batch := outbox.take_unsent():
        out += [TaskMessage.model_validate_json(t) for t in batch]
    return out


def stream(outbox: Outbox, **kw: int | float) -> TaskStream:
    return TaskStream("t", outbox, Masker([SECRET]), **kw)  # type: ignore[arg-type]


async def test_lines_of_one_unit_are_batched_until_the_delay() -> None:
    outbox = Outbox()
    s = stream(outbox, delay=0.05)
    for i in range(5):
        s.emit(log("Deploy", f"line {i}"))
    assert outbox.buffered == 0  # held for the batch
    await wait_for(lambda: outbox.buffered == 1, what="the batch after its delay")
    [msg] = sent(outbox)
    assert isinstance(msg.payload, LogPayload)
    assert [ln.text for ln in msg.payload.lines] == [f"line {i}" for i in range(5)]


async def test_a_full_batch_a_new_unit_or_another_payload_flushes_in_order() -> None:
    outbox = Outbox()
    s = stream(outbox, max_lines=3, delay=60)
    s.emit(log("A", "a1", "a2", "a3"))  # full: sent at once
    s.emit(log("A", "a4"))
    s.emit(log("B", "b1"))  # another unit: A's pending line goes first
    s.emit(UnitPayload(unit="B", status=UnitStatus.SUCCESS))  # flushes B's line first
    kinds = [(m.seq, m.payload.kind, getattr(m.payload, "unit", None)) for m in sent(outbox)]
    assert kinds == [(1, "log", "A"), (2, "log", "A"), (3, "log", "B"), (4, "unit", "B")]


async def test_secrets_are_masked_in_lines_events_and_results() -> None:
    outbox = Outbox()
    s = stream(outbox)
    s.emit(log("U", f"password={SECRET}"))
    s.emit(EventPayload(unit="U", source="ecs:service/c/s", event_id="e1", created_at=NOW,
                        message=f"saw {SECRET}"))
    s.emit(ResultPayload(status=TaskStatus.FAILED, output={"nested": {"v": SECRET}},
                         error=f"failed with {SECRET}"))
    texts = [m.model_dump_json() for m in sent(outbox)]
    assert len(texts) == 3
    assert not any(SECRET in t for t in texts)
    assert all(MASK in t for t in texts)


async def test_a_giant_line_is_clipped_with_a_note() -> None:
    outbox = Outbox()
    s = stream(outbox)
    s.emit(log("U", "z" * (MAX_LINE_CHARS + 10)))
    s.flush()
    [msg] = sent(outbox)
    assert isinstance(msg.payload, LogPayload)
    text = msg.payload.lines[0].text
    assert text.startswith("z" * MAX_LINE_CHARS)
    assert text.endswith("[line cut: 10 more characters not sent]")


def test_an_oversized_output_keeps_its_small_values() -> None:
    output = {"big": "x" * MAX_OUTPUT_CHARS, "serviceName": "web"}
    fitted = fit_output(output)
    assert fitted["serviceName"] == "web"
    assert str(fitted["big"]).startswith("<not sent: ")
    assert fit_output({"a": 1}) == {"a": 1}
