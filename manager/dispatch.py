"""Which queued task goes to which session, decided by pure functions (the way httpcore
assigns pool connections), then applied: each assignment is a persisted transition,
and its ``assign`` frame goes out after the commit.

A task whose ``assign`` frame would be over the delegates' message limit is FAILED with
the reason instead of being sent: one such frame used to cost every delegate it was
given to its connection, again and again."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from manager.db import Database, loads, now
from manager.errors import ManagerError
from manager.sessions import Session
from manager.task_states import TaskEvent
from manager.taskstore import NewTask, TaskStore
from wire.protocol import MAX_MESSAGE_BYTES, Assign, TaskSpec, TaskStatus, dump

# Room left in a frame for what the manager adds to a submitted task (its id, the
# execution's ids) and for JSON we cannot measure before the task exists.
ASSIGN_ROOM = 16 * 1024
ASSIGN_LIMIT = MAX_MESSAGE_BYTES - ASSIGN_ROOM


class TooLarge(ManagerError):
    """A task the wire cannot carry."""


def too_large_reason(size: int) -> str:
    return (f"the task is {size} bytes as sent to a delegate, over the limit of "
            f"{ASSIGN_LIMIT} bytes (a delegate message is at most {MAX_MESSAGE_BYTES} "
            "bytes); put large content in the file store and pass its path")


def check_fits(spec: NewTask) -> None:
    """Raise :class:`TooLarge` if the task's ``assign`` frame cannot be sent."""
    frame = dump(Assign(task=TaskSpec(
        task_id="task-000000000000", type=spec.type, params=spec.params,
        secrets=spec.secrets, context=spec.context, timeout=spec.timeout,
        execution_id=spec.execution_id, step_id=spec.step_id)))
    size = len(frame.encode())
    if size > ASSIGN_LIMIT:
        raise TooLarge(too_large_reason(size))


# --------------------------------------------------------------------------- the plan


@dataclass(frozen=True)
class Queued:
    task_id: str
    account_id: str | None
    type: str
    selectors: frozenset[str]


@dataclass(frozen=True)
class Slot:
    """A session as the planner sees it."""

    session_id: str
    account_id: str
    tags: frozenset[str]
    task_types: frozenset[str]
    credit: int
    draining: bool = False

    def fits(self, task: Queued) -> bool:
        return ((task.account_id is None or task.account_id == self.account_id)
                and task.selectors <= self.tags and task.type in self.task_types)


def plan_assignments(queued: Sequence[Queued], sessions: Sequence[Slot]
                     ) -> list[tuple[str, str]]:
    """``(task_id, session_id)`` pairs: oldest task first, each to the first session
    (in the order given) that fits it and has credit left. Pure."""
    credit = {s.session_id: s.credit for s in sessions if s.credit > 0 and not s.draining}
    ready = [s for s in sessions if s.session_id in credit]
    plan: list[tuple[str, str]] = []
    for task in queued:
        for slot in ready:
            if credit[slot.session_id] > 0 and slot.fits(task):
                plan.append((task.task_id, slot.session_id))
                credit[slot.session_id] -= 1
                break
        if not any(credit[s.session_id] > 0 for s in ready):
            break
    return plan


class Connected(Protocol):
    """A connected delegate as the planner's reasons need it: a local :class:`Session`
    or a ``manager.replicas.Peer`` read from the database."""

    @property
    def account_id(self) -> str: ...
    @property
    def name(self) -> str: ...
    @property
    def tags(self) -> frozenset[str]: ...
    @property
    def task_types(self) -> frozenset[str]: ...
    @property
    def draining(self) -> bool: ...
    @property
    def closed(self) -> bool: ...
    def label(self) -> str: ...


def waiting_reason(sessions: Iterable[Connected], account_id: str | None,
                   task_type: str, selectors: set[str] | frozenset[str]) -> str:
    """Why a queued task is still waiting, in words a user can act on. Pure."""
    live = [s for s in sessions if account_id is None or s.account_id == account_id]
    scope = f" for account {account_id}" if account_id else ""
    if not live:
        return f"no delegate connected{scope}; start one with 'delegate run'"
    tagged = [s for s in live if selectors <= s.tags]
    if not tagged:
        every = set().union(*(s.tags for s in live))
        missing = sorted(selectors - every) or sorted(selectors)
        connected = ", ".join(s.label() for s in live)
        return (f"no connected delegate has tags [{', '.join(missing)}]; "
                f"connected: {connected}")
    typed = [s for s in tagged if task_type in s.task_types]
    if not typed:
        names = ", ".join(s.name for s in tagged)
        return (f"no connected delegate with these tags supports task type "
                f"{task_type!r} (checked: {names})")
    if all(s.draining for s in typed):
        return f"every matching delegate is draining: {', '.join(s.name for s in typed)}"
    return f"waiting for a free slot on: {', '.join(sorted({s.name for s in typed}))}"


def slot_of(session: Session) -> Slot:
    return Slot(session_id=session.session_id, account_id=session.account_id,
                tags=session.tags, task_types=session.task_types, credit=session.credit,
                draining=session.draining or session.closed)


# --------------------------------------------------------------------------- applying it


class Dispatcher:
    """Assigns queued tasks to this replica's sessions. Other replicas may dispatch the
    same queue at the same moment: each locks the rows it planned with ``FOR UPDATE SKIP
    LOCKED`` (on PostgreSQL) and assigns only those it got, so a task is assigned once;
    a task another replica holds is left to it, and planning starts again without it."""

    def __init__(self, db: Database, store: TaskStore) -> None:
        self.db = db
        self.store = store

    def dispatch(self, sessions: dict[str, Session]) -> None:
        """Assign queued tasks to sessions with credit, until nothing more fits."""
        passed: set[str] = set()  # failed, or taken by another replica meanwhile
        while True:
            slots = [slot_of(s) for s in sessions.values()]
            if not any(s.credit > 0 and not s.draining for s in slots):
                return
            queued = [Queued(task_id=r["task_id"], account_id=r["account_id"], type=r["type"],
                             selectors=frozenset(loads(r["selectors"])))
                      for r in self.db.all("SELECT task_id, account_id, type, selectors "
                                           "FROM tasks WHERE status = 'QUEUED' "
                                           "ORDER BY created_at, task_id")
                      if r["task_id"] not in passed]
            plan = plan_assignments(queued, slots)
            if not plan:
                return
            with self.db.tx():
                mine = self._lock(task_id for task_id, _ in plan)
                for task_id, session_id in plan:
                    if task_id not in mine or not self._assign(sessions[session_id], task_id):
                        passed.add(task_id)
            if not passed.intersection(t for t, _ in plan):
                return
            # A slot is still free: plan again for the tasks behind the ones passed.

    def _lock(self, task_ids: Iterable[str]) -> set[str]:
        """The planned tasks still QUEUED and not being assigned by another replica."""
        ids = sorted(task_ids)
        marks = ", ".join("?" for _ in ids)
        return {r["task_id"] for r in self.db.all(
            f"SELECT task_id FROM tasks WHERE task_id IN ({marks}) AND status = 'QUEUED' "
            f"ORDER BY task_id{self.db.skip_locked}", *ids)}

    def _assign(self, session: Session, task_id: str) -> bool:
        """Persist one assignment and queue its frame; False if the frame cannot be
        sent (the task is FAILED with the reason instead)."""
        row = self.store.get(task_id)
        frame = dump(Assign(task=_spec(self.store, row)))
        size = len(frame.encode())
        if size > MAX_MESSAGE_BYTES:
            self.store.finish(task_id, TaskStatus.FAILED, error=too_large_reason(size))
            return False
        self.store.apply(task_id, TaskEvent.ASSIGN, delegate_id=session.delegate_id,
                         instance_id=session.instance_id, session_id=session.session_id,
                         assigned_at=now(), waiting_reason=None)
        session.credit -= 1
        session.send_text(frame)
        self.store.changed(task_id)
        return True


def _spec(store: TaskStore, row: Any) -> TaskSpec:
    return TaskSpec(task_id=row["task_id"], type=row["type"], params=loads(row["params"]),
                    secrets=store.secrets_of(row), context=loads(row["context"]),
                    timeout=row["timeout"], execution_id=row["execution_id"],
                    step_id=row["step_id"])
