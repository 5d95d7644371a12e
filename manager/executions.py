"""Executions: ordered steps run as tasks, rollback newest first, one per service.

The state lives in the database (``status``, ``phase``, ``runs``, ``plan``), and
:meth:`Executions.advance` moves an execution forward whenever something it waits for
changes (submit, a step's task finishing, another execution releasing the service,
abort, rollback, manager start). No coroutine per execution, so a restart resumes.
Statuses change only through :meth:`Executions._apply`, by the table in
:mod:`manager.exec_states`."""

from __future__ import annotations

from typing import Any

import structlog

from manager.artifact_phase import add_step
from manager.db import Database, dumps, loads, now
from manager.errors import ManagerError
from manager.exec_states import FINISHED, HOLDING, MACHINE, ExecutionEvent, ExecutionStatus
from manager.exec_steps import Earlier, earlier_of, infrastructure_to_record, plan_step
from manager.exec_views import execution_view
from manager.hub import Hub
from manager.keys import SecretBox
from manager.models import ExecutionFile, RollbackStep, Step
from manager.naming import new_id
from manager.provisioning import flatten
from manager.rollback_plan import describe, rollback_order, superseded_detail
from manager.signals import Signals
from manager.taskstore import TaskStore
from wire.protocol import TaskStatus

log = structlog.get_logger("manager.executions")

S, E = ExecutionStatus, ExecutionEvent
_FAILURES = (TaskStatus.FAILED, TaskStatus.TIMED_OUT, TaskStatus.LOST)
_FINISHED_SQL = "(" + ",".join(f"'{s.value}'" for s in FINISHED) + ")"
_HOLDING_SQL = "(" + ",".join(f"'{s.value}'" for s in HOLDING) + ")"


class Busy(ManagerError):
    """The request conflicts with the execution's state (HTTP 409)."""


class Superseded(Busy):
    """A requested rollback of an execution newer ones of its service came after."""


def service_key(spec: ExecutionFile) -> str:
    infra = spec.infrastructure
    return "|".join([spec.account_id or "*", infra.region or "", infra.cluster or "",
                     spec.service])


def stored_service_key(body: dict[str, Any], account_id: str | None) -> str:
    """:func:`service_key` of a stored spec."""
    infra = body.get("infrastructure") or {}
    return "|".join([account_id or "*", infra.get("region") or "", infra.get("cluster") or "",
                     body["service"]])


def _describe_service(spec: dict[str, Any]) -> str:
    infra = spec.get("infrastructure") or {}
    return (f"service {spec['service']} in {infra.get('region') or '-'}/"
            f"{infra.get('cluster') or '-'}")


# Submission order, the same on every backend (SQLite's rowid is not SQL).
_ORDER = "ORDER BY created_at, execution_id"
_POSITION_OF = "(SELECT created_at, execution_id FROM executions WHERE execution_id = ?)"


def holder_of(db: Database, key: str, execution_id: str) -> str | None:
    """Another execution that holds the service (deploying, aborting, rolling back)."""
    row = db.one("SELECT execution_id FROM executions WHERE service_key = ? AND "
                 f"status IN {_HOLDING_SQL} AND execution_id != ? {_ORDER} LIMIT 1",
                 key, execution_id)
    return None if row is None else str(row["execution_id"])


def newer_than(db: Database, row: Any) -> list[Any]:
    """Executions of the same service that started deploying after this one."""
    return db.all("SELECT execution_id, name, status, created_at FROM executions "
                  "WHERE service_key = ? AND started_at IS NOT NULL AND "
                  f"(created_at, execution_id) > {_POSITION_OF} {_ORDER}",
                  row["service_key"], row["execution_id"])


def check_rollback_allowed(row: Any) -> None:
    """Raise :class:`Busy` when the execution cannot be rolled back in its state."""
    eid, status = row["execution_id"], S(row["status"])
    if status == S.ROLLING_BACK:
        raise Busy(f"execution {eid} is rolling back already")
    if status == S.ABORTING:
        raise Busy(f"execution {eid} is being aborted; roll it back when it has stopped")
    if row["phase"] == "rollback" or not MACHINE.allows(status, E.ROLLBACK_REQUESTED):
        raise Busy(f"execution {eid} has already rolled back (status {status})")


class Executions:
    def __init__(self, db: Database, box: SecretBox, hub: Hub, store: TaskStore,
                 signals: Signals) -> None:
        self.db = db
        self.box = box
        self.hub = hub
        self.store = store
        self.signals = signals
        self._pending: list[str] = []
        self._advancing = False
        store.on_finished.append(self._task_finished)

    # ------------------------------------------------------------------ API actions

    def submit(self, spec: ExecutionFile) -> str:
        sealed = self.box.seal(spec.secrets) if spec.secrets else None
        body = spec.model_dump(mode="json", by_alias=True, exclude={"secrets"})
        body["secret_names"] = sorted(spec.secrets)
        return self.submit_stored(add_step(flatten(body)), account_id=spec.account_id,
                                  sealed=sealed)

    def submit_stored(self, body: dict[str, Any], *, account_id: str | None,
                      sealed: bytes | None) -> str:
        """Store and start an execution from its stored form (a re-run starts here)."""
        execution_id = new_id("exe")
        with self.db.tx():
            self.db.run("INSERT INTO executions (execution_id, account_id, name, service_key, "
                        "spec, secrets_sealed, status, phase, runs, plan, created_at) "
                        "VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                        execution_id, account_id, body["name"],
                        stored_service_key(body, account_id),
                        dumps(body), sealed, S.QUEUED, "steps", "[]", "[]", now())
        self.advance(execution_id)
        return execution_id

    def abort(self, execution_id: str, reason: str) -> bool:
        row = self._get(execution_id)
        if row is None:
            return False
        status = S(row["status"])
        if status.finished or status == S.ABORTING:
            return True
        error = row["error"] if status == S.ROLLING_BACK and row["error"] else reason
        self._apply(row, E.ABORT, error=error)
        current = self._current_task(row)
        if current is not None:
            self.hub.abort(current, reason)
        self.advance(execution_id)
        return True

    def rollback(self, execution_id: str, *, force: bool = False) -> str | None:
        """Roll back on request: interrupt a running execution, or roll back a finished
        one that has not rolled back yet. Returns the plan text (None: no such
        execution); raises :class:`Superseded` for an execution newer ones came after,
        unless ``force``."""
        row = self._get(execution_id)
        if row is None:
            return None
        check_rollback_allowed(row)
        spec, runs = loads(row["spec"]), loads(row["runs"])
        order = rollback_order(spec, runs)
        plan = describe(execution_id=execution_id, spec=spec, order=order,
                        earlier=self._earlier(runs))
        newer = newer_than(self.db, row) if S(row["status"]).finished else []
        if newer and not force:
            raise Superseded(superseded_detail(execution_id=execution_id,
                                               service=_describe_service(spec),
                                               newer=newer, plan=plan))
        holder = holder_of(self.db, row["service_key"], execution_id)
        if holder is not None and S(row["status"]).finished:  # forced or not: never both
            raise Busy(f"execution {holder} is deploying the same service; roll back "
                       "when it has finished")
        if newer:
            log.warning("forced rollback of a superseded execution",
                        execution=execution_id, newer=[r["execution_id"] for r in newer])
        if not self._apply(row, E.ROLLBACK_REQUESTED, phase="rollback", plan=dumps(order),
                           rollback_requested=1, error=None, ended_at=None):
            raise Busy(f"execution {execution_id} changed while the rollback was asked "
                       "for; look at it and ask again")
        current = self._current_task(row)
        if current is not None:
            self.hub.abort(current, "interrupted for a requested rollback")
        self.advance(execution_id)
        return plan

    def resume(self) -> None:
        for row in self.db.all("SELECT execution_id FROM executions WHERE status NOT IN "
                               f"{_FINISHED_SQL} {_ORDER}"):
            self.advance(row["execution_id"])

    # ------------------------------------------------------------------ transitions

    def _apply(self, row: Any, event: ExecutionEvent, **fields: Any) -> bool:
        """The one place an execution's status changes: ``(status, event)`` through the
        table, stored only if the row still has the status it was read with."""
        old = S(row["status"])
        new = MACHINE.next(old, event)
        if new == S.RUNNING and old == S.QUEUED:
            fields.update(started_at=now(), waiting_reason=None)
        if new.finished:
            fields.update(ended_at=now(), waiting_reason=None)
        sets = "".join(f", {name} = ?" for name in fields)  # names from this module only
        with self.db.tx():
            changed = self.db.run(f"UPDATE executions SET status = ?{sets} WHERE "
                                  "execution_id = ? AND status = ?", new,
                                  *fields.values(), row["execution_id"], old)
        if not changed:
            return False
        log.info("execution status", execution=row["execution_id"], on=str(event),
                 old=str(old), status=str(new))
        if new.finished:
            self._release(row["service_key"])
        self._pending.insert(0, row["execution_id"])
        return True

    def _save(self, execution_id: str, **fields: Any) -> None:
        """Store progress that is not a status: ``runs``, ``plan``, ``waiting_reason``."""
        sets = ", ".join(f"{name} = ?" for name in fields)
        with self.db.tx():
            self.db.run(f"UPDATE executions SET {sets} WHERE execution_id = ?",
                        *fields.values(), execution_id)

    def _release(self, key: str) -> None:
        for waiting in self.db.all("SELECT execution_id FROM executions WHERE service_key = ? "
                                   f"AND status = ? {_ORDER} LIMIT 1", key, S.QUEUED):
            self._pending.append(waiting["execution_id"])

    # ------------------------------------------------------------------ advancing

    def _task_finished(self, task_id: str, status: TaskStatus) -> None:
        row = self.db.one("SELECT execution_id FROM tasks WHERE task_id = ?", task_id)
        if row is not None and row["execution_id"]:
            self.advance(row["execution_id"])

    def advance(self, execution_id: str) -> None:
        # Starting a step can finish a task at once (a bad expression), which calls
        # back here: queue instead of recursing.
        self._pending.append(execution_id)
        self._flush()

    def _flush(self) -> None:
        if self._advancing:
            return
        self._advancing = True
        try:
            while self._pending:
                eid = self._pending.pop(0)
                try:
                    # One replica at a time advances an execution: its row stays locked
                    # (PostgreSQL) until the advance commits, and a replica waiting for
                    # it then reads what the first one did.
                    with self.db.tx():
                        self.db.one("SELECT execution_id FROM executions WHERE "
                                    f"execution_id = ?{self.db.for_update}", eid)
                        self._advance(eid)
                except Exception:
                    log.exception("execution could not advance", execution=eid)
                self.signals.notify(f"execution:{eid}")
        finally:
            self._advancing = False

    def _advance(self, execution_id: str) -> None:
        row = self._get(execution_id)
        if row is None or S(row["status"]).finished:
            return
        status, spec, runs = S(row["status"]), loads(row["spec"]), loads(row["runs"])
        if status == S.QUEUED:
            self._try_start(row, spec)
            return
        last = self._run_status(runs[-1]) if runs else None
        if runs and (last is None or not last.finished):
            return  # wait for the running step's task
        if status == S.ABORTING:
            self._apply(row, E.STOPPED)
        elif status == S.RUNNING:
            self._advance_steps(row, spec, runs, last)
        else:
            self._advance_rollback(row, spec, runs)

    def _advance_steps(self, row: Any, spec: dict[str, Any], runs: list[dict[str, Any]],
                       last: TaskStatus | None) -> None:
        if last == TaskStatus.ABORTED:
            self._apply(row, E.STEP_ABORTED, error="a step's task was aborted")
        elif last in _FAILURES:
            task = self.store.get(runs[-1]["task_id"])
            error = f"step {runs[-1]['step_id']} ended {last}: {task['error'] or 'no error'}"
            log.info("execution rolling back", execution=row["execution_id"], error=error)
            self._apply(row, E.STEP_FAILED, phase="rollback", error=error,
                        plan=dumps(rollback_order(spec, runs)))
        else:
            done = sum(1 for r in runs if r["phase"] == "steps")
            if done < len(spec["steps"]):
                self._start_step(row, spec, Step.model_validate(spec["steps"][done]),
                                 "steps", None)
            else:
                self._apply(row, E.STEPS_DONE)

    def _advance_rollback(self, row: Any, spec: dict[str, Any],
                          runs: list[dict[str, Any]]) -> None:
        plan = loads(row["plan"])
        if plan:
            step_id, rest = plan[0], plan[1:]
            self._save(row["execution_id"], plan=dumps(rest))
            rb = next(r for r in spec["rollbackSteps"] if r["id"] == step_id)
            self._start_step(row, spec, RollbackStep.model_validate(rb), "rollback",
                             rb["rollsBack"])
            return
        failed = [r["step_id"] for r in runs if r["phase"] == "rollback"
                  and r.get("status") != "SKIPPED"
                  and self._run_status(r) != TaskStatus.SUCCESS]
        if failed:
            error = (row["error"] + "; " if row["error"] else "") + \
                f"rollback step(s) {', '.join(failed)} did not succeed"
            self._apply(row, E.ROLLBACK_FAILED, error=error)
        else:
            self._apply(row, E.FAILURE_UNDONE if row["error"] else E.ROLLBACK_DONE)

    def _try_start(self, row: Any, spec: dict[str, Any]) -> None:
        holder = holder_of(self.db, row["service_key"], row["execution_id"])
        if holder is None:
            earlier = self.db.one("SELECT execution_id FROM executions WHERE service_key = ? "
                                  "AND status = ? AND (created_at, execution_id) < "
                                  f"{_POSITION_OF} {_ORDER} LIMIT 1",
                                  row["service_key"], S.QUEUED, row["execution_id"])
            holder = earlier["execution_id"] if earlier else None
        if holder is not None:
            self._save(row["execution_id"], waiting_reason=(
                f"waiting for execution {holder}: it deploys the same "
                f"{_describe_service(spec)}"))
            return
        self._apply(row, E.START)

    def _start_step(self, row: Any, spec: dict[str, Any], step: Step, phase: str,
                    rolls_back: str | None) -> None:
        runs = loads(row["runs"])
        planned = plan_step(execution_id=row["execution_id"], account_id=row["account_id"],
                            spec=spec, step=step, phase=phase, earlier=self._earlier(runs),
                            secrets=self.box.open(row["secrets_sealed"]) or {})
        run: dict[str, Any] = {"step_id": step.id, "phase": phase, "rolls_back": rolls_back}
        if planned.skipped is not None:
            # No task: nothing of that step is there to undo. Said, not counted a failure.
            log.info("rollback step skipped", execution=row["execution_id"], step=step.id,
                     reason=planned.skipped)
            runs.append({**run, "task_id": None, "status": "SKIPPED",
                         "error": planned.skipped})
            self._save(row["execution_id"], runs=dumps(runs))
            self._pending.insert(0, row["execution_id"])
            return
        task_id = self.store.create(planned.task)
        runs.append({**run, "task_id": task_id})
        resolved = infrastructure_to_record(spec, step, self._earlier(runs))
        self._save(row["execution_id"], runs=dumps(runs),
                   **({"spec": dumps(resolved)} if resolved else {}))
        if planned.error is not None:
            self.store.finish(task_id, TaskStatus.FAILED, error=planned.error)
            return
        self.hub.refresh_waiting_reasons([task_id])
        self.hub.dispatch()

    # ------------------------------------------------------------------ reading

    def _get(self, execution_id: str) -> Any:
        return self.db.one("SELECT * FROM executions WHERE execution_id = ?", execution_id)

    def _earlier(self, runs: list[dict[str, Any]]) -> Earlier:
        tasks = {}
        for run in runs:
            task = self.store.get(run["task_id"]) if run.get("task_id") else None
            if task is not None:
                tasks[run["task_id"]] = {"status": task["status"],
                                         "output": loads(task["output"])}
        return earlier_of(runs, tasks)

    def _run_status(self, run: dict[str, Any]) -> TaskStatus | None:
        if run.get("task_id") is None:  # a skipped rollback step: done, nothing ran
            return TaskStatus.SUCCESS
        task = self.store.get(run["task_id"])
        return None if task is None else TaskStatus(task["status"])

    def _current_task(self, row: Any) -> str | None:
        runs = loads(row["runs"])
        if not runs or runs[-1].get("task_id") is None:
            return None
        status = self._run_status(runs[-1])
        if status is None or status.finished:
            return None
        return str(runs[-1]["task_id"])

    def view(self, execution_id: str) -> dict[str, Any] | None:
        return execution_view(self._get(execution_id), self.store)

    def list(self, status: str | None, limit: int) -> list[dict[str, Any]]:
        rows = self.db.all("SELECT * FROM executions WHERE (? IS NULL OR status = ?) "
                           "ORDER BY created_at DESC, execution_id DESC LIMIT ?",
                           status, status, limit)
        return [v for r in rows if (v := execution_view(r, self.store)) is not None]
