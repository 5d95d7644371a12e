"""A task's lifecycle as one table: ``(status, event) -> status``.

:meth:`manager.taskstore.TaskStore.apply` is the only code that writes a task's status,
and it looks the change up here first."""

from __future__ import annotations

from enum import StrEnum

from manager.transitions import Machine
from wire.protocol import TaskStatus


class TaskEvent(StrEnum):
    ASSIGN = "assign"  # the dispatcher gave it to a session
    START = "start"  # the delegate accepted it, resumed it, or sent its first message
    REQUEUE = "requeue"  # rejected, or its session went away before it started
    SUCCEED = "succeed"
    FAIL = "fail"
    ABORT = "abort"
    TIME_OUT = "time_out"
    LOSE = "lose"  # its delegate was silent past the lease


RESULT_EVENTS: dict[TaskStatus, TaskEvent] = {
    TaskStatus.SUCCESS: TaskEvent.SUCCEED,
    TaskStatus.FAILED: TaskEvent.FAIL,
    TaskStatus.ABORTED: TaskEvent.ABORT,
    TaskStatus.TIMED_OUT: TaskEvent.TIME_OUT,
    TaskStatus.LOST: TaskEvent.LOSE,
}

Q, A, R = TaskStatus.QUEUED, TaskStatus.ASSIGNED, TaskStatus.RUNNING
E = TaskEvent

TASKS: Machine[TaskStatus, TaskEvent] = Machine("task", {
    (Q, E.ASSIGN): A,
    (A, E.START): R,
    (R, E.START): R,  # a resume after a reconnect
    (A, E.REQUEUE): Q,
    # Ended by the manager before it ran: aborted, or refused (too large to send, an
    # expression that does not resolve).
    (Q, E.ABORT): TaskStatus.ABORTED,
    (A, E.ABORT): TaskStatus.ABORTED,
    (Q, E.FAIL): TaskStatus.FAILED,
    (A, E.FAIL): TaskStatus.FAILED,
    # The delegate's result, or the manager's verdict on a running task.
    (R, E.SUCCEED): TaskStatus.SUCCESS,
    (R, E.FAIL): TaskStatus.FAILED,
    (R, E.ABORT): TaskStatus.ABORTED,
    (R, E.TIME_OUT): TaskStatus.TIMED_OUT,
    (R, E.LOSE): TaskStatus.LOST,
    # A late result from the delegate instance that ran it: what really happened
    # replaces the presumption (the row records that it came late).
    (TaskStatus.LOST, E.SUCCEED): TaskStatus.SUCCESS,
    (TaskStatus.LOST, E.FAIL): TaskStatus.FAILED,
    (TaskStatus.LOST, E.ABORT): TaskStatus.ABORTED,
    (TaskStatus.LOST, E.TIME_OUT): TaskStatus.TIMED_OUT,
})
