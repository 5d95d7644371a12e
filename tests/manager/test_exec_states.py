"""The execution lifecycle table: what may follow what."""

from __future__ import annotations

import pytest

from manager.exec_states import FINISHED, MACHINE, ExecutionEvent, ExecutionStatus
from manager.transitions import IllegalTransition

S, E = ExecutionStatus, ExecutionEvent


def test_every_status_is_reachable_from_queued() -> None:
    seen, todo = {S.QUEUED}, [S.QUEUED]
    while todo:
        status = todo.pop()
        for (src, _event), dst in MACHINE.table.items():
            if src == status and dst not in seen:
                seen.add(dst)
                todo.append(dst)
    assert seen == set(S)


def test_only_success_and_aborted_leave_a_finished_status_and_only_to_roll_back() -> None:
    leaving = {(src, ev): dst for (src, ev), dst in MACHINE.table.items() if src in FINISHED}
    assert leaving == {(S.SUCCESS, E.ROLLBACK_REQUESTED): S.ROLLING_BACK,
                       (S.ABORTED, E.ROLLBACK_REQUESTED): S.ROLLING_BACK}


def test_an_abort_waits_for_the_running_step_before_it_releases_the_service() -> None:
    assert MACHINE.next(S.RUNNING, E.ABORT) is S.ABORTING
    assert MACHINE.next(S.ROLLING_BACK, E.ABORT) is S.ABORTING
    assert MACHINE.next(S.ABORTING, E.STOPPED) is S.ABORTED
    assert not S.ABORTING.finished


def test_a_requested_rollback_ends_rolled_back_a_failure_ends_failed() -> None:
    assert MACHINE.next(S.ROLLING_BACK, E.ROLLBACK_DONE) is S.ROLLED_BACK
    assert MACHINE.next(S.ROLLING_BACK, E.FAILURE_UNDONE) is S.FAILED
    assert MACHINE.next(S.QUEUED, E.ROLLBACK_REQUESTED) is S.ROLLED_BACK


def test_rolling_back_twice_is_illegal_and_says_so() -> None:
    with pytest.raises(IllegalTransition, match="execution: event 'rollback_requested' is "
                                                "not allowed in status 'ROLLED_BACK'"):
        MACHINE.next(S.ROLLED_BACK, E.ROLLBACK_REQUESTED)
