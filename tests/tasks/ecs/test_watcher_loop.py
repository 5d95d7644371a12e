"""The polling loop, fed a scripted sequence of DescribeServices answers."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from agent.context import TaskFailed, TaskTimedOut
from tasks.ecs.watcher import Target, WatchState, event_ids, wait_for_steady_state

from .support import make_ctx
from .test_watcher_verdict import NEW, OLD, TD_NEW, TD_OLD, deployment, service

T0 = datetime(2022, 10, 6, 23, 3, 45, 606000, tzinfo=UTC)


class ScriptedDescriber:
    """Answers from a list, repeating the last one."""

    def __init__(self, answers: list[dict[str, Any] | None]) -> None:
        self.answers = answers
        self.calls = 0

    async def describe(self, service: str, *, delay: float) -> dict[str, Any] | None:
        answer = self.answers[min(self.calls, len(self.answers) - 1)]
        self.calls += 1
        await asyncio.sleep(delay)
        return answer


def ev(n: int, msg: str, ms: int) -> dict[str, Any]:
    return {"id": f"e{n}", "createdAt": T0 + timedelta(milliseconds=ms), "message": msg}


HISTORY = ev(0, "(service myapp) has reached a steady state.", -3_600_000)
STARTED = ev(1, "(service myapp) has started 1 tasks: (task f025d07bd780454b9f8e7cebac16aa20).",
             645)
STOPPED = ev(2, "(service myapp) has stopped 1 running tasks: (task 072854d4).", 76_000)
DONE = ev(3, f"(service myapp) (deployment {NEW}) deployment completed.", 80_000)


async def test_success_prints_events_once_oldest_first_and_counts_on_change() -> None:
    created = service(deployment(NEW, TD_NEW, running=0, rollout="IN_PROGRESS"),
                      deployment(OLD, TD_OLD, status="ACTIVE"), events=[HISTORY])
    answers = [
        created,
        service(deployment(NEW, TD_NEW, running=0, pending=1, rollout="IN_PROGRESS"),
                deployment(OLD, TD_OLD, status="ACTIVE"), events=[STARTED, HISTORY]),
        service(deployment(NEW, TD_NEW, running=1, rollout="IN_PROGRESS"),
                deployment(OLD, TD_OLD, status="ACTIVE"), events=[STARTED, HISTORY]),
        service(deployment(NEW, TD_NEW, running=1, rollout="IN_PROGRESS"),
                deployment(OLD, TD_OLD, status="ACTIVE", running=0),
                events=[STOPPED, STARTED, HISTORY]),
        service(deployment(NEW, TD_NEW), events=[DONE, STOPPED, STARTED, HISTORY]),
    ]
    ctx, rec = make_ctx("t", {})
    async with ctx.log.unit("Deploy") as log:
        await wait_for_steady_state(
            describer=ScriptedDescriber(answers), ecs=None, log=log, cluster="ecs-tutorial",
            target=Target("myapp", NEW, TD_NEW), state=WatchState(seen=event_ids(created)),
            poll_interval=0.001, give_up_after=5)
    assert rec.lines("Deploy") == [
        "Waiting for pending tasks to finish. 0/1 running ...",
        "# AWS Event: 2022-10-06 23:03:46.251 (service myapp) has started 1 tasks: "
        "(task f025d07bd780454b9f8e7cebac16aa20).",
        "Waiting for pending tasks to finish. 1/1 running ...",
        "Waiting for Service myapp to reach steady state",
        "# AWS Event: 2022-10-06 23:05:01.606 (service myapp) has stopped 1 running tasks: "
        "(task 072854d4).",
        "# AWS Event: 2022-10-06 23:05:05.606 (service myapp) (deployment "
        f"{NEW}) deployment completed.",
        "Service myapp reached steady state",
    ]
    assert [e.event_id for e in rec.events()] == ["e1", "e2", "e3"]
    assert rec.events()[0].source == "ecs:service/ecs-tutorial/myapp"


async def test_circuit_breaker_rollback_fails_with_the_reason() -> None:
    answers = [service(
        deployment(OLD, TD_OLD, rollout="IN_PROGRESS",
                   reason=f"ECS deployment circuit breaker: rolling back to deploymentId {OLD}."),
        deployment(NEW, TD_NEW, status="ACTIVE", running=0, rollout="FAILED",
                   reason="ECS deployment circuit breaker: tasks failed to start."),
        events=[ev(5, f"(service myapp) rolling back to deployment {OLD}.", 1),
                ev(4, f"(service myapp) (deployment {NEW}) deployment failed: tasks failed to "
                      "start.", 0)])]
    ctx, rec = make_ctx("t", {})
    with pytest.raises(TaskFailed, match="tasks failed to start"):
        async with ctx.log.unit("Deploy") as log:
            await wait_for_steady_state(
                describer=ScriptedDescriber(answers), ecs=None, log=log, cluster="c",
                target=Target("myapp", NEW, TD_NEW), state=WatchState(), poll_interval=0.001,
                give_up_after=5)
    text = rec.text("Deploy")
    assert text.index("deployment failed") < text.index("rolling back to deployment")


async def test_timeout_names_what_it_waited_for() -> None:
    answers = [service(deployment(NEW, TD_NEW, running=1, desired=2, pending=1,
                                  rollout="IN_PROGRESS"))]
    ctx, _ = make_ctx("t", {})
    async with ctx.log.unit("Deploy") as log:
        # TIMED_OUT, not FAILED: the runner and the CLI's exit code 4 tell them apart.
        with pytest.raises(TaskTimedOut) as failed:
            await wait_for_steady_state(
                describer=ScriptedDescriber(answers), ecs=None, log=log, cluster="c",
                target=Target("myapp", NEW, TD_NEW), state=WatchState(), poll_interval=0.01,
                give_up_after=0.2)
    assert str(failed.value).startswith(
        f"Service myapp did not reach steady state within 0.2s: deployment {NEW} has 1/2 "
        "running, 1 pending, rolloutState IN_PROGRESS.")
