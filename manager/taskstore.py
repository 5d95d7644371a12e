"""Task rows and their sequenced messages: the one place task states change
(:meth:`TaskStore.apply`, driven by the table in :mod:`manager.task_states`).

Reading ``last_seq``, storing a message and bumping ``last_seq`` happen in one
transaction, and the ack is sent only after it commits, so after a crash the manager
holds exactly the messages it acked. A result finishes a task once; a late result from
the instance that ran a task marked LOST replaces the presumption and is flagged."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from manager.db import Database, dumps, loads, now
from manager.keys import SecretBox
from manager.naming import new_id
from manager.task_states import RESULT_EVENTS, TASKS, TaskEvent
from manager.transitions import IllegalTransition
from wire.protocol import (
    FINISHED_STATUSES,
    EventPayload,
    LogLevel,
    LogPayload,
    ResultPayload,
    TaskPayload,
    TaskStatus,
    UnitPayload,
)

FINISHED = tuple(s.value for s in FINISHED_STATUSES)
# The columns a transition may set besides the status.
_FIELDS = frozenset({"output", "error", "ended_at", "waiting_reason", "delegate_id",
                     "instance_id", "session_id", "assigned_at", "started_at",
                     "late_result"})


@dataclass(frozen=True)
class NewTask:
    type: str
    selectors: list[str]
    params: dict[str, Any]
    secrets: dict[str, str]
    context: dict[str, Any]
    timeout: float
    account_id: str | None = None
    execution_id: str | None = None
    step_id: str | None = None


def _iso(value: Any) -> str | None:
    return None if value is None else value.isoformat()


class TaskStore:
    def __init__(self, db: Database, box: SecretBox, max_log_bytes: int) -> None:
        self.db = db
        self.box = box
        self.max_log_bytes = max_log_bytes
        # Called after the transaction that finished a task commits: (task_id, status).
        self.on_finished: list[Callable[[str, TaskStatus], None]] = []
        self.on_entries: list[Callable[[str], None]] = []

    # ------------------------------------------------------------------ create / read

    def create(self, spec: NewTask) -> str:
        task_id = new_id("task")
        sealed = self.box.seal(spec.secrets) if spec.secrets else None
        with self.db.tx():
            self.db.run(
                "INSERT INTO tasks (task_id, account_id, type, selectors, params, "
                "secrets_sealed, context, timeout, status, created_at, execution_id, step_id) "
                "VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                task_id, spec.account_id, spec.type, dumps(sorted(set(spec.selectors))),
                dumps(spec.params), sealed, dumps(spec.context), spec.timeout,
                TaskStatus.QUEUED.value, now(), spec.execution_id, spec.step_id)
        return task_id

    def get(self, task_id: str) -> Any:
        return self.db.one("SELECT * FROM tasks WHERE task_id = ?", task_id)

    def secrets_of(self, row: Any) -> dict[str, str]:
        value = self.box.open(row["secrets_sealed"])
        return dict(value) if value else {}

    # ------------------------------------------------------------------ state changes

    def apply(self, task_id: str, event: TaskEvent, **fields: Any) -> TaskStatus:
        """Apply ``event`` to the task in one transaction: the new status comes from the
        table, and the UPDATE names the old one, so a concurrent change cannot be
        overwritten. Raises :class:`IllegalTransition` (or KeyError for no such task)."""
        unknown = set(fields) - _FIELDS
        if unknown:
            raise ValueError(f"not a task field: {sorted(unknown)}")
        with self.db.tx():
            # Locked (on PostgreSQL) until the commit: another replica's change of this
            # task waits for ours, then reads what we wrote.
            row = self.db.one(f"SELECT status FROM tasks WHERE task_id = ?"
                              f"{self.db.for_update}", task_id)
            if row is None:
                raise KeyError(task_id)
            old = TaskStatus(row["status"])
            new = TASKS.next(old, event)
            sets = ", ".join(f"{name} = ?" for name in fields)
            changed = self.db.run(
                f"UPDATE tasks SET status = ?{', ' + sets if sets else ''} "
                "WHERE task_id = ? AND status = ?",
                new.value, *fields.values(), task_id, old.value)
            if changed != 1:  # cannot happen under the lock; kept as a guard
                raise IllegalTransition("task", old, event)
        return new

    def try_apply(self, task_id: str, event: TaskEvent, **fields: Any) -> TaskStatus | None:
        """:meth:`apply`, or None when the task is gone or ``event`` is not allowed in
        its current status (it finished, or another event came first)."""
        try:
            return self.apply(task_id, event, **fields)
        except (IllegalTransition, KeyError):
            return None

    def finish(self, task_id: str, status: TaskStatus, *, output: dict[str, Any] | None = None,
               error: str | None = None) -> bool:
        """Finish a task the manager decided about (LOST, ABORTED before it ran,
        TIMED_OUT, FAILED before it was sent). Returns False if it had already finished."""
        with self.db.tx():
            done = self._finish_in_tx(task_id, ResultPayload(
                status=status, output=output or {}, error=error), seq=None)
        if done:
            self._after_finish(task_id, status)
        return done

    def _finish_in_tx(self, task_id: str, result: ResultPayload, seq: int | None,
                      *, late: bool = False) -> bool:
        fields: dict[str, Any] = {"output": dumps(result.output), "error": result.error,
                                  "ended_at": now(), "waiting_reason": None}
        if late:
            fields["late_result"] = 1
        if self.try_apply(task_id, RESULT_EVENTS[result.status], **fields) is None:
            return False
        self.db.run("INSERT INTO entries (task_id, seq, kind, unit, data) VALUES "
                    "(?,?,?,?,?)", task_id, seq, "result", None,
                    dumps({"status": result.status.value, "output": result.output,
                           "error": result.error, **({"late": True} if late else {})}))
        return True

    def changed(self, task_id: str) -> None:
        """Wake whoever follows the task, once what changed is committed."""
        # Called inside the transaction: a callback defers what it does to the commit
        # itself (Signals.notify does), and a NOTIFY to the other replicas then rides on
        # this transaction's commit instead of costing one of its own.
        for cb in self.on_entries:
            cb(task_id)

    def _after_finish(self, task_id: str, status: TaskStatus) -> None:
        self.changed(task_id)
        for fin in self.on_finished:
            self.db.after_commit(lambda fin=fin: fin(task_id, status))  # type: ignore[misc]

    # ------------------------------------------------------------------ messages

    def store(self, task_id: str, seq: int, payload: TaskPayload) -> int:
        """Store message ``seq`` of a task if it is the next one. Returns the ack: the
        highest contiguous seq held (a duplicate or a gap changes nothing)."""
        finished_now: TaskStatus | None = None
        with self.db.tx():
            # Locked until the commit: a resend reaching another replica while this one
            # stores the same seq waits, then finds it held.
            row = self.db.one("SELECT status, last_seq, log_bytes, truncated FROM tasks "
                              f"WHERE task_id = ?{self.db.for_update}", task_id)
            if row is None:
                return 0
            last = int(row["last_seq"])
            if seq != last + 1:
                return last
            log_bytes, truncated = int(row["log_bytes"]), bool(row["truncated"])
            if isinstance(payload, LogPayload | EventPayload):
                log_bytes, truncated = self._store_log(task_id, seq, payload, log_bytes,
                                                       truncated)
            elif isinstance(payload, UnitPayload):
                self._store_unit(task_id, seq, payload)
            elif isinstance(payload, ResultPayload) and payload.status.value in FINISHED:
                late = row["status"] == TaskStatus.LOST
                if self._finish_in_tx(task_id, payload, seq, late=late) and not late:
                    # A late result changes the record, but the task had finished
                    # already (as LOST) for whatever waited on it.
                    finished_now = payload.status
            self.db.run("UPDATE tasks SET last_seq = ?, log_bytes = ?, truncated = ? "
                        "WHERE task_id = ? AND last_seq = ?",
                        seq, log_bytes, int(truncated), task_id, last)
        if finished_now is not None:
            self._after_finish(task_id, finished_now)
        else:
            self.changed(task_id)
        return seq

    def _store_log(self, task_id: str, seq: int, payload: LogPayload | EventPayload,
                   log_bytes: int, truncated: bool) -> tuple[int, bool]:
        if truncated:
            return log_bytes, truncated
        rows: list[tuple[Any, ...]] = []
        if isinstance(payload, EventPayload):
            size = len(payload.message.encode())
            items = [(size, ("event", payload.unit, dumps({
                "source": payload.source, "event_id": payload.event_id,
                "created_at": _iso(payload.created_at), "message": payload.message})))]
        else:
            items = [(len(line.text.encode()) + 1, ("log", payload.unit, dumps({
                "ts": _iso(line.ts), "level": line.level.value, "text": line.text})))
                for line in payload.lines]
        for size, (kind, unit, data) in items:
            if log_bytes + size > self.max_log_bytes:
                truncated = True
                rows.append((task_id, seq, "log", unit, dumps({
                    "ts": _iso_now(), "level": LogLevel.WARN.value,
                    "text": f"Log truncated: this task's log reached the manager's limit of "
                            f"{self.max_log_bytes} bytes; later lines are not stored."})))
                break
            log_bytes += size
            rows.append((task_id, seq, kind, unit, data))
        self.db.many(
            "INSERT INTO entries (task_id, seq, kind, unit, data) VALUES (?,?,?,?,?)", rows)
        return log_bytes, truncated

    def _store_unit(self, task_id: str, seq: int, payload: UnitPayload) -> None:
        entry_id = self.db.insert_id(
            "INSERT INTO entries (task_id, seq, kind, unit, data) VALUES (?,?,?,?,?)",
            task_id, seq, "unit", payload.unit, dumps({
                "status": payload.status.value, "started_at": _iso(payload.started_at),
                "ended_at": _iso(payload.ended_at)}))
        self.db.run(
            "INSERT INTO units (task_id, unit, status, started_at, ended_at, first_entry) "
            "VALUES (?,?,?,?,?,?) ON CONFLICT (task_id, unit) DO UPDATE SET "
            "status = excluded.status, started_at = COALESCE(units.started_at, "
            "excluded.started_at), ended_at = excluded.ended_at",
            task_id, payload.unit, payload.status.value, _iso(payload.started_at),
            _iso(payload.ended_at), entry_id)

    # ------------------------------------------------------------------ reading logs

    def entries(self, task_id: str, after: int, limit: int = 5000) -> list[dict[str, Any]]:
        out = []
        for row in self.db.all("SELECT id, seq, kind, unit, data FROM entries WHERE "
                               "task_id = ? AND id > ? ORDER BY id LIMIT ?",
                               task_id, after, limit):
            entry: dict[str, Any] = {"id": row["id"], "seq": row["seq"], "kind": row["kind"]}
            if row["unit"] is not None:
                entry["unit"] = row["unit"]
            entry.update(loads(row["data"]))
            out.append(entry)
        return out

    def units(self, task_id: str) -> list[Any]:
        return self.db.all("SELECT unit, status, started_at, ended_at FROM units "
                           "WHERE task_id = ? ORDER BY first_entry", task_id)


def _iso_now() -> str:
    from datetime import UTC, datetime

    return datetime.now(UTC).isoformat()
