"""Executions: ordered steps run as tasks, rollback newest first, one per service.

The state lives in the database (``status``, ``phase``, ``runs``, ``plan``), and
:meth:`Executions.advance` moves an execution forward whenever something it waits for
changes (submit, a step's task finishing, another execution releasing the service,
abort, rollback, manager start). No coroutine per execution, so a restart resumes."""

from __future__ import annotations

import hashlib
from typing import Any

import structlog

from manager.db import Database, dumps, loads, now
from manager.expressions import ExpressionError, Resolver
from manager.hub import Hub
from manager.keys import SecretBox
from manager.models import ExecutionFile, RollbackStep, Step
from manager.naming import new_id
from manager.signals import Signals
from manager.taskstore import FINISHED, NewTask, TaskStore
from wire.protocol import TaskStatus

log = structlog.get_logger("manager.executions")

QUEUED, RUNNING, ROLLING_BACK = "QUEUED", "RUNNING", "ROLLING_BACK"
SUCCESS, FAILED, ABORTED, ROLLED_BACK = "SUCCESS", "FAILED", "ABORTED", "ROLLED_BACK"
EXECUTION_FINISHED = (SUCCESS, FAILED, ABORTED, ROLLED_BACK)
_FAILURES = (TaskStatus.FAILED, TaskStatus.TIMED_OUT, TaskStatus.LOST)
_INFRA_PARAMS = ("region", "cluster", "credentials")


class Busy(Exception):
    pass


def service_key(spec: ExecutionFile) -> str:
    infra = spec.infrastructure
    return "|".join([spec.account_id or "*", infra.region or "", infra.cluster or "",
                     spec.service])


def _describe_service(spec: dict[str, Any]) -> str:
    infra = spec.get("infrastructure") or {}
    return (f"service {spec['service']} in {infra.get('region') or '-'}/"
            f"{infra.get('cluster') or '-'}")


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
        execution_id = new_id("exe")
        sealed = self.box.seal(spec.secrets) if spec.secrets else None
        body = spec.model_dump(mode="json", by_alias=True, exclude={"secrets"})
        body["secret_names"] = sorted(spec.secrets)
        with self.db.tx():
            self.db.run("INSERT INTO executions (execution_id, account_id, name, service_key, "
                        "spec, secrets_sealed, status, phase, runs, plan, created_at) "
                        "VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                        execution_id, spec.account_id, spec.name, service_key(spec),
                        dumps(body), sealed, QUEUED, "steps", "[]", "[]", now())
        self.advance(execution_id)
        return execution_id

    def abort(self, execution_id: str, reason: str) -> bool:
        row = self._get(execution_id)
        if row is None:
            return False
        if row["status"] in EXECUTION_FINISHED:
            return True
        self.db.run("UPDATE executions SET abort_requested = 1 WHERE execution_id = ?",
                    execution_id)
        current = self._current_task(row)
        if current is not None:
            self.hub.abort(current, reason)
        self.advance(execution_id)
        return True

    def rollback(self, execution_id: str) -> bool:
        """Roll back on request: interrupt a running execution, or roll back a finished
        one that has not rolled back yet."""
        row = self._get(execution_id)
        if row is None:
            return False
        if row["phase"] == "rollback":
            raise Busy(f"execution {execution_id} has already rolled back "
                       f"(status {row['status']})")
        if row["status"] in (QUEUED, RUNNING):
            self.db.run("UPDATE executions SET rollback_requested = 1 WHERE execution_id = ?",
                        execution_id)
            current = self._current_task(row)
            if current is not None:
                self.hub.abort(current, "interrupted for a manual rollback")
            self.advance(execution_id)
            return True
        holder = self._holder(row["service_key"], execution_id)
        if holder is not None:
            raise Busy(f"execution {holder} is deploying the same service; roll back when "
                       "it has finished")
        self.db.run("UPDATE executions SET status = ?, ended_at = NULL, rollback_requested = 1, "
                    "abort_requested = 0 WHERE execution_id = ?", ROLLING_BACK, execution_id)
        self._start_rollback(self._get(execution_id), error=None)
        self._flush()
        return True

    def resume(self) -> None:
        for row in self.db.all("SELECT execution_id FROM executions WHERE status NOT IN "
                               "(?,?,?,?) ORDER BY rowid", *EXECUTION_FINISHED):
            self.advance(row["execution_id"])

    # ------------------------------------------------------------------ the state machine

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
                    self._advance(eid)
                except Exception:
                    log.exception("execution could not advance", execution=eid)
                self.signals.notify(f"execution:{eid}")
        finally:
            self._advancing = False

    def _advance(self, execution_id: str) -> None:
        row = self._get(execution_id)
        if row is None or row["status"] in EXECUTION_FINISHED:
            return
        spec = loads(row["spec"])
        if row["status"] == QUEUED:
            self._try_start(row, spec)
            return
        runs = loads(row["runs"])
        last_status = self._run_status(runs[-1]) if runs else None
        if runs and (last_status is None or last_status.value not in FINISHED):
            return
        if row["phase"] == "steps":
            if row["rollback_requested"]:
                self._start_rollback(row, error=None)
            elif row["abort_requested"] or last_status == TaskStatus.ABORTED:
                self._end(row, ABORTED, "aborted by user")
            elif last_status in _FAILURES:
                last = runs[-1]
                task = self.store.get(last["task_id"])
                self._start_rollback(row, error=(
                    f"step {last['step_id']} ended {last_status}: {task['error'] or 'no error'}"))
            else:
                done = sum(1 for r in runs if r["phase"] == "steps")
                if done < len(spec["steps"]):
                    self._start_step(row, spec, Step.model_validate(spec["steps"][done]),
                                     "steps", None)
                else:
                    self._end(row, SUCCESS, None)
        else:
            plan = loads(row["plan"])
            if row["abort_requested"]:
                self._end(row, ABORTED, row["error"] or "aborted by user")
            elif plan:
                self._next_rollback(row, spec, plan)
            else:
                failed_rb = [r["step_id"] for r in runs if r["phase"] == "rollback"
                             and self._run_status(r) != TaskStatus.SUCCESS]
                error = row["error"]
                if failed_rb:
                    error = (error + "; " if error else "") + \
                        f"rollback step(s) {', '.join(failed_rb)} did not succeed"
                status = FAILED if row["error"] or failed_rb else ROLLED_BACK
                self._end(row, status, error)

    def _try_start(self, row: Any, spec: dict[str, Any]) -> None:
        if row["abort_requested"]:
            self._end(row, ABORTED, "aborted before it started")
            return
        holder = self._holder(row["service_key"], row["execution_id"])
        if holder is None:
            earlier = self.db.one("SELECT execution_id FROM executions WHERE service_key = ? "
                                  "AND status = ? AND rowid < (SELECT rowid FROM executions "
                                  "WHERE execution_id = ?) ORDER BY rowid LIMIT 1",
                                  row["service_key"], QUEUED, row["execution_id"])
            holder = earlier["execution_id"] if earlier else None
        if holder is not None:
            self.db.run("UPDATE executions SET waiting_reason = ? WHERE execution_id = ?",
                        f"waiting for execution {holder}: it deploys the same "
                        f"{_describe_service(spec)}", row["execution_id"])
            return
        self.db.run("UPDATE executions SET status = ?, started_at = ?, waiting_reason = NULL "
                    "WHERE execution_id = ?", RUNNING, now(), row["execution_id"])
        self._pending.insert(0, row["execution_id"])

    def _holder(self, key: str, execution_id: str) -> str | None:
        row = self.db.one("SELECT execution_id FROM executions WHERE service_key = ? AND "
                          "status IN (?, ?) AND execution_id != ? ORDER BY rowid LIMIT 1",
                          key, RUNNING, ROLLING_BACK, execution_id)
        return None if row is None else str(row["execution_id"])

    def _start_rollback(self, row: Any, *, error: str | None) -> None:
        spec = loads(row["spec"])
        started = [r["step_id"] for r in loads(row["runs"]) if r["phase"] == "steps"]
        plan: list[str] = []
        for step_id in reversed(started):
            plan += [rb["id"] for rb in spec["rollbackSteps"] if rb["rollsBack"] == step_id]
        self.db.run("UPDATE executions SET phase = 'rollback', status = ?, plan = ?, error = ? "
                    "WHERE execution_id = ?", ROLLING_BACK, dumps(plan), error,
                    row["execution_id"])
        log.info("execution rolling back", execution=row["execution_id"], plan=plan)
        self._pending.insert(0, row["execution_id"])

    def _next_rollback(self, row: Any, spec: dict[str, Any], plan: list[str]) -> None:
        step_id, rest = plan[0], plan[1:]
        self.db.run("UPDATE executions SET plan = ? WHERE execution_id = ?", dumps(rest),
                    row["execution_id"])
        rb = next(r for r in spec["rollbackSteps"] if r["id"] == step_id)
        self._start_step(row, spec, RollbackStep.model_validate(rb), "rollback",
                         rb["rollsBack"])

    def _start_step(self, row: Any, spec: dict[str, Any], step: Step, phase: str,
                    rolls_back: str | None) -> None:
        runs = loads(row["runs"])
        outputs: dict[str, dict[str, Any]] = {}
        for run in runs:
            task = self.store.get(run["task_id"])
            if task is not None and task["status"] in FINISHED:
                outputs[run["step_id"]] = loads(task["output"]) or {}
        infra = spec.get("infrastructure") or {}
        where = f"{'steps' if phase == 'steps' else 'rollbackSteps'}[{step.id}].params"
        params = dict(step.params)
        for key in _INFRA_PARAMS:
            if key not in params and infra.get(key) is not None:
                params[key] = infra[key]
        secrets = self.box.open(row["secrets_sealed"]) or {}
        context = {
            "artifact": spec.get("artifact") or {},
            "primary": {"artifact": spec.get("artifact") or {}},
            "serviceVariables": spec.get("serviceVariables") or {},
            "env": spec.get("env") or {},
            "infra": {k: infra.get(k) for k in ("region", "cluster")},
            "execution": {"id": row["execution_id"], "name": spec["name"],
                          "steps": {k: {"output": v} for k, v in outputs.items()}},
        }
        error = None
        try:
            params = Resolver(outputs=outputs, infra=infra).resolve(params, where)
        except ExpressionError as exc:
            error = str(exc)
        new = NewTask(type=step.type, selectors=step.selectors
                      if step.selectors is not None else spec.get("selectors") or [],
                      params=params, secrets=dict(secrets), context=context,
                      timeout=step.timeout or 3600.0, account_id=row["account_id"],
                      execution_id=row["execution_id"], step_id=step.id)
        task_id = self.store.create(new)
        runs.append({"step_id": step.id, "phase": phase, "rolls_back": rolls_back,
                     "task_id": task_id})
        self.db.run("UPDATE executions SET runs = ? WHERE execution_id = ?", dumps(runs),
                    row["execution_id"])
        if error is not None:
            self.store.finish(task_id, TaskStatus.FAILED, error=error)
            return
        self.hub.refresh_waiting_reasons([task_id])
        self.hub.dispatch()

    def _end(self, row: Any, status: str, error: str | None) -> None:
        self.db.run("UPDATE executions SET status = ?, error = ?, ended_at = ?, "
                    "waiting_reason = NULL WHERE execution_id = ?", status, error, now(),
                    row["execution_id"])
        log.info("execution finished", execution=row["execution_id"], status=status)
        for waiting in self.db.all("SELECT execution_id FROM executions WHERE service_key = ? "
                                   "AND status = ? ORDER BY rowid LIMIT 1",
                                   row["service_key"], QUEUED):
            self._pending.append(waiting["execution_id"])

    # ------------------------------------------------------------------ reading

    def _get(self, execution_id: str) -> Any:
        return self.db.one("SELECT * FROM executions WHERE execution_id = ?", execution_id)

    def _run_status(self, run: dict[str, Any]) -> TaskStatus | None:
        task = self.store.get(run["task_id"])
        return None if task is None else TaskStatus(task["status"])

    def _current_task(self, row: Any) -> str | None:
        runs = loads(row["runs"])
        if not runs:
            return None
        status = self._run_status(runs[-1])
        if status is None or status.value in FINISHED:
            return None
        return str(runs[-1]["task_id"])

    def view(self, execution_id: str) -> dict[str, Any] | None:
        row = self._get(execution_id)
        if row is None:
            return None
        spec = loads(row["spec"])
        runs = []
        for run in loads(row["runs"]):
            task = self.store.get(run["task_id"])
            runs.append({**run, "status": task["status"] if task else None,
                         "error": task["error"] if task else None,
                         "output": loads(task["output"]) if task else None})
        version = hashlib.sha256(dumps([row["status"], row["waiting_reason"], [
            (r["task_id"], r["status"]) for r in runs]]).encode()).hexdigest()[:16]
        return {"execution_id": row["execution_id"], "name": row["name"], "version": version,
                "service": spec["service"], "account_id": row["account_id"],
                "status": row["status"], "phase": row["phase"],
                "waiting_reason": row["waiting_reason"], "error": row["error"],
                "created_at": row["created_at"], "started_at": row["started_at"],
                "ended_at": row["ended_at"], "runs": runs}

    def list(self, status: str | None, limit: int) -> list[dict[str, Any]]:
        rows = self.db.all("SELECT execution_id FROM executions WHERE (? IS NULL OR status = ?) "
                           "ORDER BY rowid DESC LIMIT ?", status, status, limit)
        return [v for r in rows if (v := self.view(r["execution_id"])) is not None]
