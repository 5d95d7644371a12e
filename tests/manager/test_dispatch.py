"""The pure halves of the manager's task core: the assignment plan, the task transition
table, and the rule that only the task store writes a task's status (issue 13)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from manager.dispatch import Queued, Slot, plan_assignments
from manager.task_states import TASKS, TaskEvent
from manager.transitions import IllegalTransition
from wire.protocol import TaskStatus


def _task(task_id: str, *tags: str, type: str = "t", account: str | None = None) -> Queued:
    return Queued(task_id=task_id, account_id=account, type=type, selectors=frozenset(tags))


def _slot(session_id: str, credit: int, *tags: str, types: tuple[str, ...] = ("t",),
          account: str = "acme", draining: bool = False) -> Slot:
    return Slot(session_id=session_id, account_id=account, tags=frozenset(tags),
                task_types=frozenset(types), credit=credit, draining=draining)


def test_oldest_first_to_the_first_fitting_session_within_credit() -> None:
    queued = [_task("t1", "a"), _task("t2", "b"), _task("t3", "a"), _task("t4", "a")]
    sessions = [_slot("s1", 1, "a"), _slot("s2", 2, "a", "b")]
    assert plan_assignments(queued, sessions) == [("t1", "s1"), ("t2", "s2"), ("t3", "s2")]


def test_selectors_types_accounts_and_draining_are_respected() -> None:
    queued = [_task("tags", "x"), _task("type", type="other"),
              _task("acct", account="elsewhere"), _task("ok")]
    sessions = [_slot("drain", 5, "x", types=("t", "other"), draining=True),
                _slot("s", 5)]
    assert plan_assignments(queued, sessions) == [("ok", "s")]


def test_nothing_to_do() -> None:
    assert plan_assignments([], [_slot("s", 3)]) == []
    assert plan_assignments([_task("t")], [_slot("s", 0)]) == []


def test_the_task_table() -> None:
    q, a, r = TaskStatus.QUEUED, TaskStatus.ASSIGNED, TaskStatus.RUNNING
    assert TASKS.next(q, TaskEvent.ASSIGN) == a
    assert TASKS.next(a, TaskEvent.START) == r
    assert TASKS.next(a, TaskEvent.REQUEUE) == q
    assert TASKS.next(r, TaskEvent.LOSE) == TaskStatus.LOST
    assert TASKS.next(TaskStatus.LOST, TaskEvent.SUCCEED) == TaskStatus.SUCCESS
    with pytest.raises(IllegalTransition, match="'succeed' is not allowed in status 'SUCCESS'"):
        TASKS.next(TaskStatus.SUCCESS, TaskEvent.SUCCEED)
    with pytest.raises(IllegalTransition):
        TASKS.next(r, TaskEvent.REQUEUE)  # a running task is never run twice


def test_only_the_task_store_writes_a_task_status() -> None:
    root = Path(__file__).resolve().parents[2] / "manager"
    writes = re.compile(r"UPDATE\s+tasks\s+SET[^\"']*\bstatus\s*=", re.IGNORECASE)
    offenders = [p.name for p in root.glob("*.py")
                 if p.name != "taskstore.py" and writes.search(p.read_text())]
    assert offenders == []
