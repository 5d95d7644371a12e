"""Runs tasks: a capacity limit, one coroutine worker per task, timeout, abort, drain.

A worker always ends with exactly one result message, whatever its handler does: returns,
raises, hangs past its timeout, or is aborted. A handler's failure never reaches the
session or another task.
"""

from __future__ import annotations

import asyncio
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import structlog
from pydantic import BaseModel, ValidationError

from agent.context import (
    FileStore,
    TaskContext,
    TaskFailed,
    TaskLog,
    TaskRegistry,
    TaskTimedOut,
    params_with_defaults,
)
from agent.masking import Masker
from agent.outbox import Outbox
from agent.stream import TaskStream
from wire.protocol import PARAM_DEFAULTS, ResultPayload, TaskSpec, TaskStatus

log = structlog.get_logger("agent.runner")


@dataclass
class _Running:
    spec: TaskSpec
    ctx: TaskContext
    stream: TaskStream
    task: asyncio.Task[None]
    started: float
    abort_reason: str | None = None
    report: bool = True


@dataclass
class RunnerStats:
    finished: dict[tuple[str, str], int] = field(default_factory=dict)


def format_validation_error(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors()[:5]:
        loc = ".".join(str(p) for p in err["loc"]) or "params"
        parts.append(f"params.{loc}: {err['msg']}" if loc != "params" else err["msg"])
    more = len(exc.errors()) - 5
    return "invalid params: " + "; ".join(parts) + (f" (and {more} more)" if more > 0 else "")


class Runner:
    def __init__(self, registry: TaskRegistry, *, capacity: int, outbox: Outbox,
                 files: FileStore, base_secrets: tuple[str, ...] = (),
                 on_finished: Callable[[str], None] = lambda _t: None,
                 aws_call_observer: Callable[[str, str, bool], None] | None = None,
                 task_observer: Callable[[str, str, float], None] | None = None) -> None:
        self.registry = registry
        self.capacity = capacity
        self._outbox = outbox
        self._files = files
        self._base_secrets = base_secrets
        self._on_finished = on_finished
        self._aws_observer = aws_call_observer
        self._task_observer = task_observer
        self._running: dict[str, _Running] = {}
        self.accepting = True
        self.stats = RunnerStats()
        self._idle = asyncio.Event()
        self._idle.set()

    # ------------------------------------------------------------------ queries

    @property
    def free_slots(self) -> int:
        return max(0, self.capacity - len(self._running)) if self.accepting else 0

    def running_ids(self) -> list[str]:
        return list(self._running)

    def running_types(self) -> list[str]:
        return [r.spec.type for r in self._running.values()]

    def is_running(self, task_id: str) -> bool:
        return task_id in self._running

    # ------------------------------------------------------------------ commands

    def start(self, spec: TaskSpec) -> str | None:
        """Start a task. Returns None when started, else why not (sent as a Reject)."""
        if spec.task_id in self._running:
            return None
        if not self.accepting:
            return "delegate is draining"
        if len(self._running) >= self.capacity:
            return "no free slot"
        self._outbox.open(spec.task_id)
        stream = TaskStream(spec.task_id, self._outbox, self._masker(spec))
        ctx = TaskContext(
            task_id=spec.task_id, type=spec.type, params=spec.params, secrets=spec.secrets,
            context=spec.context, log=TaskLog(stream.emit), files=self._files,
            aws_call_observer=self._aws_observer, add_secret=stream.masker.add,
        )
        task = asyncio.create_task(self._work(spec, ctx, stream), name=f"task:{spec.task_id}")
        self._running[spec.task_id] = _Running(spec, ctx, stream, task, time.monotonic())
        task.add_done_callback(self._reap)
        self._idle.clear()
        return None

    def _reap(self, task: asyncio.Task[None]) -> None:
        """A worker that ended without its result: cancelled before its first step (an
        abort right after the assign) or by a cancellation nobody asked for. It still
        reports exactly one result."""
        for running in list(self._running.values()):
            if running.task is task:
                self._finish(running.spec, running.ctx, running.stream, TaskStatus.ABORTED,
                             running.abort_reason or "task cancelled")

    def abort(self, task_id: str, reason: str, *, report: bool = True) -> bool:
        running = self._running.get(task_id)
        if running is None:
            return False
        if running.abort_reason is None:
            running.abort_reason = reason
            running.report = report
            running.task.cancel(reason)
        return True

    async def drain(self, grace: float, reason: str = "delegate stopping") -> list[str]:
        """Stop taking work, wait up to ``grace`` for running tasks, then abort the rest.
        Returns the ids that had to be aborted."""
        self.accepting = False
        try:
            await asyncio.wait_for(self._idle.wait(), timeout=grace)
            return []
        except TimeoutError:
            left = list(self._running)
            for task_id in left:
                self.abort(task_id, reason)
            await self._idle.wait()
            return left

    # ------------------------------------------------------------------ the worker

    def _masker(self, spec: TaskSpec) -> Masker:
        return Masker([*self._base_secrets, *spec.secrets.values()])

    async def _work(self, spec: TaskSpec, ctx: TaskContext, stream: TaskStream) -> None:
        with structlog.contextvars.bound_contextvars(task_id=spec.task_id, type=spec.type):
            status, error = await self._outcome(spec, ctx, stream)
        self._finish(spec, ctx, stream, status, error)

    async def _outcome(self, spec: TaskSpec, ctx: TaskContext,
                       stream: TaskStream) -> tuple[TaskStatus, str | None]:
        """Run the handler; whatever it does, say how the task ended and why."""
        try:
            task_type = self.registry.get(spec.type)
            if task_type is None:
                raise TaskFailed(
                    f"unknown task type {spec.type!r}; this delegate runs: "
                    + ", ".join(self.registry.names())
                )
            if task_type.params_model is not None:
                ctx.params = _parse_params(task_type.params_model, params_with_defaults(
                    task_type.params_model, spec.params, spec.context.get(PARAM_DEFAULTS)))
            async with asyncio.timeout(spec.timeout):
                returned = await task_type.handler(ctx)
            if returned:
                ctx.output.update(returned)
            return TaskStatus.SUCCESS, None
        except TaskFailed as exc:
            ctx.output.update(exc.output)
            timed_out = isinstance(exc, TaskTimedOut)
            return (TaskStatus.TIMED_OUT if timed_out else TaskStatus.FAILED), str(exc)
        except TimeoutError:
            return TaskStatus.TIMED_OUT, f"task ran past its timeout of {spec.timeout:g}s"
        except asyncio.CancelledError:
            running = self._running.get(spec.task_id)
            current = asyncio.current_task()
            if running is None or running.abort_reason is None or current is None:
                raise
            current.uncancel()
            return TaskStatus.ABORTED, running.abort_reason
        except Exception as exc:  # a handler bug must not take anything else down
            error = f"task handler error: {type(exc).__name__}: {exc}"
            trace = stream.masker("".join(traceback.format_exception(exc)))
            log.error("task handler raised", error=error, traceback=trace)
            return TaskStatus.FAILED, error

    def _finish(self, spec: TaskSpec, ctx: TaskContext, stream: TaskStream,
                status: TaskStatus, error: str | None) -> None:
        """Exactly one result per task, then the bookkeeping."""
        running = self._running.pop(spec.task_id, None)
        report = running.report if running else True
        if report:
            stream.emit(ResultPayload(status=status, output=ctx.output, error=error))
        else:
            stream.flush()
            self._outbox.drop(spec.task_id)
        elapsed = time.monotonic() - (running.started if running else time.monotonic())
        key = (spec.type, status.value)
        self.stats.finished[key] = self.stats.finished.get(key, 0) + 1
        if self._task_observer is not None:
            self._task_observer(spec.type, status.value, elapsed)
        log.info("task finished", task_id=spec.task_id, status=status.value,
                 seconds=round(elapsed, 3))
        if not self._running:
            self._idle.set()
        self._on_finished(spec.task_id)


def _parse_params(model: type[BaseModel], params: dict[str, Any]) -> BaseModel:
    try:
        return model.model_validate(params)
    except ValidationError as exc:
        raise TaskFailed(format_validation_error(exc)) from None

