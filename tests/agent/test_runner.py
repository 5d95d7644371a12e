"""The runner with a real outbox: every task ends with exactly one result, whatever its
handler does; capacity, abort and drain."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from pydantic import BaseModel
from structlog.testing import capture_logs

from agent.context import TaskContext, TaskFailed, TaskRegistry, TaskType
from agent.outbox import Outbox
from agent.runner import Runner
from testkit.stack import wait_for
from wire.protocol import ResultPayload, TaskMessage, TaskSpec

SECRET = "runner-secret-value-42"


class NoFiles:
    async def get(self, path: str) -> bytes:
        raise AssertionError(f"no file store in this test ({path})")


class Params(BaseModel):
    count: int


async def ok(ctx: TaskContext) -> dict[str, Any]:
    async with ctx.log.unit("Work") as log:
        log.info("working")
    return {"done": True}


async def fails(ctx: TaskContext) -> None:
    ctx.output["rollbackData"] = {"kept": 1}
    raise TaskFailed("the service did not reach a steady state")


async def crashes(ctx: TaskContext) -> None:
    raise RuntimeError(f"bug holding {ctx.secrets['password']}")


async def hangs(ctx: TaskContext) -> None:
    await asyncio.Event().wait()


async def typed(ctx: TaskContext) -> dict[str, Any]:
    assert isinstance(ctx.params, Params)
    return {"count": ctx.params.count}


def registry() -> TaskRegistry:
    reg = TaskRegistry()
    for name, handler, model in [("ok", ok, None), ("fails", fails, None),
                                 ("crashes", crashes, None), ("hangs", hangs, None),
                                 ("typed", typed, Params)]:
        reg.register(TaskType(name=name, handler=handler, summary=name, params_model=model))
    return reg


class Rig:
    """A runner, its outbox, and what it reported."""

    def __init__(self, capacity: int = 4) -> None:
        self.outbox = Outbox()
        self.finished: list[str] = []
        self.observed: list[tuple[str, str]] = []
        self.sent: list[TaskMessage] = []
        self.runner = Runner(registry(), capacity=capacity, outbox=self.outbox,
                             files=NoFiles(), base_secrets=("edt.token.base-secret",),
                             on_finished=self.finished.append,
                             task_observer=lambda t, s, _secs: self.observed.append((t, s)))

    def messages(self, task_id: str) -> list[TaskMessage]:
        while batch := self.outbox.take_unsent():
            self.sent += [TaskMessage.model_validate_json(t) for t in batch]
        return [m for m in self.sent if m.task_id == task_id]

    def result(self, task_id: str) -> ResultPayload:
        [result] = [m.payload for m in self.messages(task_id)
                    if isinstance(m.payload, ResultPayload)]
        return result

    async def run(self, spec: TaskSpec) -> ResultPayload:
        assert self.runner.start(spec) is None
        await wait_for(lambda: spec.task_id in self.finished, timeout=10,
                       what=f"{spec.task_id} to finish")
        return self.result(spec.task_id)


Rig.__test__ = False  # type: ignore[attr-defined]


@pytest.fixture
def r() -> Rig:
    return Rig()


async def test_success_reports_the_output_once(r: Rig) -> None:
    with capture_logs() as logs:
        result = await r.run(TaskSpec(task_id="t-ok", type="ok"))
    assert (result.status, result.output, result.error) == ("SUCCESS", {"done": True}, None)
    assert r.runner.stats.finished == {("ok", "SUCCESS"): 1}
    assert r.observed == [("ok", "SUCCESS")]
    assert [e["event"] for e in logs] == ["task finished"]
    assert r.runner.free_slots == 4


async def test_task_failed_keeps_the_output_it_recorded(r: Rig) -> None:
    result = await r.run(TaskSpec(task_id="t-f", type="fails"))
    assert result.status == "FAILED"
    assert result.error == "the service did not reach a steady state"
    assert result.output == {"rollbackData": {"kept": 1}}


async def test_a_handler_bug_fails_the_task_with_its_secrets_masked(r: Rig) -> None:
    with capture_logs() as logs:
        result = await r.run(TaskSpec(task_id="t-c", type="crashes",
                                      secrets={"password": SECRET}))
    assert result.status == "FAILED"
    assert result.error == "task handler error: RuntimeError: bug holding **************"
    [raised] = [e for e in logs if e["event"] == "task handler raised"]
    assert "RuntimeError" in raised["traceback"] and SECRET not in raised["traceback"]


async def test_timeout_and_unknown_type_and_invalid_params(r: Rig) -> None:
    timed = await r.run(TaskSpec(task_id="t-t", type="hangs", timeout=0.05))
    assert (timed.status, timed.error) == ("TIMED_OUT", "task ran past its timeout of 0.05s")
    unknown = await r.run(TaskSpec(task_id="t-u", type="nope"))
    assert unknown.status == "FAILED"
    assert unknown.error == ("unknown task type 'nope'; this delegate runs: crashes, fails, "
                             "hangs, ok, typed")
    bad = await r.run(TaskSpec(task_id="t-p", type="typed", params={"count": "many"}))
    assert bad.status == "FAILED"
    assert bad.error is not None and bad.error.startswith("invalid params: params.count: ")
    good = await r.run(TaskSpec(task_id="t-g", type="typed", params={"count": 3}))
    assert good.output == {"count": 3}


async def test_abort_reports_aborted_and_a_cancel_reports_nothing(r: Rig) -> None:
    assert r.runner.start(TaskSpec(task_id="t-a", type="hangs")) is None
    assert r.runner.start(TaskSpec(task_id="t-quiet", type="hangs")) is None
    assert r.runner.abort("t-a", "aborted by user")
    assert r.runner.abort("t-quiet", "task already LOST", report=False)
    assert not r.runner.abort("t-none", "no such task")
    await wait_for(lambda: {"t-a", "t-quiet"} <= set(r.finished), what="both aborted")
    result = r.result("t-a")
    assert (result.status, result.error) == ("ABORTED", "aborted by user")
    assert r.messages("t-quiet") == []
    assert "t-quiet" not in list(r.outbox.task_ids())


async def test_capacity_and_duplicates() -> None:
    r = Rig(capacity=1)
    spec = TaskSpec(task_id="t-1", type="hangs")
    assert r.runner.start(spec) is None
    assert r.runner.start(spec) is None  # the same task again: already running, not twice
    assert r.runner.running_ids() == ["t-1"]
    assert r.runner.start(TaskSpec(task_id="t-2", type="ok")) == "no free slot"
    assert r.runner.free_slots == 0
    r.runner.abort("t-1", "test ending")
    await wait_for(lambda: r.finished, what="t-1 aborted")


async def test_drain_waits_for_running_tasks_then_aborts_the_rest(r: Rig) -> None:
    assert r.runner.start(TaskSpec(task_id="t-h", type="hangs")) is None
    assert r.runner.start(TaskSpec(task_id="t-ok", type="ok")) is None
    aborted = await r.runner.drain(grace=0.2)
    assert aborted == ["t-h"]
    assert r.result("t-h").error == "delegate stopping"
    assert r.result("t-ok").status == "SUCCESS"
    assert r.runner.start(TaskSpec(task_id="t-late", type="ok")) == "delegate is draining"
    assert r.runner.free_slots == 0
    assert await r.runner.drain(grace=0.2) == []
