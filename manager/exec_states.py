"""An execution's lifecycle as one table: its statuses, the events that move it, and
``(status, event) -> status``. What was asked for (abort, rollback) is an event here, not a
flag read later, so the status alone says what an execution is doing.

::

    QUEUED --start--> RUNNING --steps_done--> SUCCESS
       |                 | step_failed / rollback_requested
       |                 v
       |            ROLLING_BACK --rollback_done--> ROLLED_BACK
       |                 |  \\--rollback_failed / failure_undone--> FAILED
       |  abort          | abort
       |                 v
       +--> ABORTED <--stopped-- ABORTING (waits for the running step's task to end)

SUCCESS and ABORTED (before any rollback) may be rolled back on request; QUEUED rolled
back ends ROLLED_BACK at once, since nothing of it ran."""

from __future__ import annotations

from enum import StrEnum

from manager.transitions import Machine


class ExecutionStatus(StrEnum):
    QUEUED = "QUEUED"
    RUNNING = "RUNNING"
    ABORTING = "ABORTING"  # abort asked; the running step's task has not ended yet
    ROLLING_BACK = "ROLLING_BACK"
    SUCCESS = "SUCCESS"
    FAILED = "FAILED"
    ABORTED = "ABORTED"
    ROLLED_BACK = "ROLLED_BACK"

    @property
    def finished(self) -> bool:
        return self in FINISHED


class ExecutionEvent(StrEnum):
    START = "start"  # the service is free: the first step may run
    STEPS_DONE = "steps_done"  # every step succeeded
    STEP_FAILED = "step_failed"  # a step ended FAILED, TIMED_OUT or LOST
    STEP_ABORTED = "step_aborted"  # a step's task was aborted by itself (task API)
    ABORT = "abort"
    STOPPED = "stopped"  # after an abort: the running task has ended
    ROLLBACK_REQUESTED = "rollback_requested"
    ROLLBACK_DONE = "rollback_done"  # a requested rollback: every rollback step succeeded
    FAILURE_UNDONE = "failure_undone"  # a failed deployment's rollback steps all succeeded
    ROLLBACK_FAILED = "rollback_failed"  # a rollback step did not succeed


S, E = ExecutionStatus, ExecutionEvent
FINISHED = frozenset({S.SUCCESS, S.FAILED, S.ABORTED, S.ROLLED_BACK})
# Statuses that hold the service: no other execution of it may start meanwhile.
HOLDING = (S.RUNNING, S.ABORTING, S.ROLLING_BACK)

MACHINE: Machine[ExecutionStatus, ExecutionEvent] = Machine("execution", {
    (S.QUEUED, E.START): S.RUNNING,
    (S.QUEUED, E.ABORT): S.ABORTED,
    (S.QUEUED, E.ROLLBACK_REQUESTED): S.ROLLED_BACK,
    (S.RUNNING, E.STEPS_DONE): S.SUCCESS,
    (S.RUNNING, E.STEP_FAILED): S.ROLLING_BACK,
    (S.RUNNING, E.STEP_ABORTED): S.ABORTED,
    (S.RUNNING, E.ABORT): S.ABORTING,
    (S.RUNNING, E.ROLLBACK_REQUESTED): S.ROLLING_BACK,
    (S.ABORTING, E.STOPPED): S.ABORTED,
    (S.ROLLING_BACK, E.ABORT): S.ABORTING,
    (S.ROLLING_BACK, E.ROLLBACK_DONE): S.ROLLED_BACK,
    (S.ROLLING_BACK, E.FAILURE_UNDONE): S.FAILED,
    (S.ROLLING_BACK, E.ROLLBACK_FAILED): S.FAILED,
    (S.SUCCESS, E.ROLLBACK_REQUESTED): S.ROLLING_BACK,
    (S.ABORTED, E.ROLLBACK_REQUESTED): S.ROLLING_BACK,
})
