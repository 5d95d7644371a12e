"""Lifecycles as data: one transition table per record kind (task, execution), the way
h11's ``_state.py`` keeps HTTP's. A status changes only by looking up ``(status, event)``
here; anything not in the table is an :class:`IllegalTransition` that names both, so a
bug shows as a clear error instead of a silently overwritten status."""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import Generic, TypeVar

from manager.errors import ManagerError

S = TypeVar("S", bound=StrEnum)
E = TypeVar("E", bound=StrEnum)


class IllegalTransition(ManagerError):
    def __init__(self, record: str, status: StrEnum, event: StrEnum) -> None:
        super().__init__(f"{record}: event {event.value!r} is not allowed in status "
                         f"{status.value!r}")
        self.status = status
        self.event = event


class Machine(Generic[S, E]):
    """``(status, event) -> status``. Pure; storing the result is the caller's (one
    function per record kind, in one transaction, with the old status in its WHERE)."""

    def __init__(self, record: str, table: Mapping[tuple[S, E], S]) -> None:
        self.record = record
        self.table = dict(table)

    def next(self, status: S, event: E) -> S:
        try:
            return self.table[(status, event)]
        except KeyError:
            raise IllegalTransition(self.record, status, event) from None

    def allows(self, status: S, event: E) -> bool:
        return (status, event) in self.table

    def sources(self, event: E) -> list[S]:
        """The statuses from which ``event`` is legal (for a SQL ``status IN (...)``)."""
        return [status for (status, ev) in self.table if ev == event]
