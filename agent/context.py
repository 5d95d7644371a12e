"""The seam between the delegate runtime and task handlers.

A handler is ``async def handler(ctx: TaskContext[Params]) -> dict | None``. It reads
``ctx.params`` (an instance of the task type's pydantic model ``Params``, validated by the
runner before the handler starts; the raw dict when the type has no model),
``ctx.secrets`` and ``ctx.context`` (the expression context), logs through command units
(``async with ctx.log.unit("Deploy") as log: log.info(...)``), fetches files from the
manager's file store through ``ctx.files``, and records outputs in ``ctx.output`` as it
goes, so a task that fails or is aborted still reports what it did (the rollback data).

To fail with a message and no traceback, raise :class:`TaskFailed`. Cancellation
(abort, timeout, shutdown) arrives as ``asyncio.CancelledError``: let it propagate.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Generic, Protocol

from pydantic import BaseModel
from typing_extensions import TypeVar

from wire.protocol import (
    EventPayload,
    LogLevel,
    LogLine,
    LogPayload,
    TaskPayload,
    UnitPayload,
    UnitStatus,
)


class TaskFailed(Exception):
    """A task failed for a reason the user can act on. ``str(exc)`` is shown as is."""

    def __init__(self, message: str, *, output: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.output = output or {}


class TaskTimedOut(TaskFailed):
    """A task that gave up waiting for AWS within a limit the user set (a steady-state
    timeout): it ends TIMED_OUT, not FAILED, so a caller can tell "it broke" from "it took
    longer than you allowed" (the CLI's exit code 4)."""


class FileStore(Protocol):
    async def get(self, path: str) -> bytes: ...


# Emits one payload; the runner wires this to masking + batching + the outbox.
PayloadSink = Callable[[TaskPayload], None]
# Called for every AWS API call a task makes: (service, operation, throttled).
AwsCallObserver = Callable[[str, str, bool], None]


def _now() -> datetime:
    return datetime.now(UTC)


class UnitLog:
    """The log of one command unit. ``write`` is a stream: partial lines are held until
    their newline, so masking always sees whole lines."""

    def __init__(self, name: str, emit: Callable[[str, LogLevel, str], None],
                 emit_event: Callable[[EventPayload], None]) -> None:
        self.name = name
        self._emit = emit
        self._emit_event = emit_event
        self._partial = ""

    def info(self, text: str = "") -> None:
        self._lines(text, LogLevel.INFO)

    def warn(self, text: str) -> None:
        self._lines(text, LogLevel.WARN)

    def error(self, text: str) -> None:
        self._lines(text, LogLevel.ERROR)

    def write(self, chunk: str, level: LogLevel = LogLevel.INFO) -> None:
        data = self._partial + chunk
        *complete, self._partial = data.split("\n")
        for line in complete:
            self._emit(self.name, level, line)

    def flush(self) -> None:
        if self._partial:
            self._emit(self.name, LogLevel.INFO, self._partial)
            self._partial = ""

    def _lines(self, text: str, level: LogLevel) -> None:
        self.flush()
        for line in str(text).split("\n"):
            self._emit(self.name, level, line)

    def aws_event(self, *, source: str, event_id: str, created_at: datetime,
                  message: str) -> None:
        """Record an AWS service event and print it as ``# AWS Event: ...``."""
        self._emit_event(EventPayload(unit=self.name, source=source, event_id=event_id,
                                      created_at=created_at, message=message))
        stamp = created_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]
        self.info(f"# AWS Event: {stamp} {message}")


class TaskLog:
    """Command units of one task. Units are opened with :meth:`unit`."""

    def __init__(self, sink: PayloadSink) -> None:
        self._sink = sink
        self.units: dict[str, UnitStatus] = {}

    def _emit_line(self, unit: str, level: LogLevel, text: str) -> None:
        self._sink(LogPayload(unit=unit, lines=[LogLine(ts=_now(), level=level, text=text)]))

    def _emit_event(self, event: EventPayload) -> None:
        self._sink(event)

    def _status(self, unit: str, status: UnitStatus, started: datetime | None,
                ended: datetime | None = None) -> None:
        self.units[unit] = status
        self._sink(UnitPayload(unit=unit, status=status, started_at=started, ended_at=ended))

    @asynccontextmanager
    async def unit(self, name: str) -> AsyncIterator[UnitLog]:
        """RUNNING on entry; SUCCESS on normal exit; FAILURE if the body raises
        (cancellation included), and the exception propagates."""
        started = _now()
        self._status(name, UnitStatus.RUNNING, started)
        log = UnitLog(name, self._emit_line, self._emit_event)
        try:
            yield log
        except BaseException as exc:
            log.flush()
            if isinstance(exc, TaskFailed):
                log.error(str(exc))
            elif isinstance(exc, asyncio.CancelledError):
                log.error("Interrupted")
            self._status(name, UnitStatus.FAILURE, started, _now())
            raise
        log.flush()
        self._status(name, UnitStatus.SUCCESS, started, _now())

    def skip(self, name: str, reason: str = "") -> None:
        now = _now()
        if reason:
            self._emit_line(name, LogLevel.INFO, reason)
        self._status(name, UnitStatus.SKIPPED, now, now)


# A task type's params. The default (Any) is for code that does not read them: the
# runner, which parses them, and helpers that take any task's context.
P = TypeVar("P", default=Any)
# A task type's params model (Any: a type without one, whose handler reads the dict).
M = TypeVar("M", bound=BaseModel, default=Any)


@dataclass
class TaskContext(Generic[P]):
    task_id: str
    type: str
    params: P  # the task type's params model instance, or a dict when it has none
    secrets: dict[str, str]
    context: dict[str, Any]
    log: TaskLog
    files: FileStore
    output: dict[str, Any] = field(default_factory=dict)
    aws_call_observer: AwsCallObserver | None = None
    # Extra secret values discovered while running (e.g. a fetched credential): masked too.
    add_secret: Callable[[str], None] = lambda _s: None


Handler = Callable[[TaskContext[P]], Awaitable[dict[str, Any] | None]]


@dataclass(frozen=True)
class TaskType(Generic[M]):
    """A task type. The runner validates the params with ``params_model`` before calling
    ``handler``, and the two share ``M``: a handler registered with another type's model
    is a type error."""

    name: str
    handler: Handler[M]
    summary: str
    params_model: type[M] | None = None
    # Output keys and what they hold (for docs/tasks.md).
    outputs: dict[str, str] = field(default_factory=dict)
    units: tuple[str, ...] = ()


class TaskRegistry:
    def __init__(self) -> None:
        self._types: dict[str, TaskType] = {}
        # Awaited once when the delegate stops: task packages close what they pool
        # (AWS clients, ...) without the runtime knowing what that is.
        self.shutdown_hooks: list[Callable[[], Awaitable[None]]] = []

    # Generic so that mypy infers the TaskType's model from its own arguments (against a
    # plain ``TaskType`` it would take Any, and a mismatched handler would pass).
    def register(self, task_type: TaskType[M]) -> None:
        if task_type.name in self._types:
            raise ValueError(f"task type {task_type.name!r} registered twice")
        self._types[task_type.name] = task_type

    def get(self, name: str) -> TaskType | None:
        return self._types.get(name)

    def names(self) -> list[str]:
        return sorted(self._types)

    def __iter__(self) -> Iterator[TaskType[Any]]:
        return iter(self._types[n] for n in self.names())


def params_with_defaults(model: type[BaseModel], params: dict[str, Any],
                         defaults: Any) -> dict[str, Any]:
    """``params`` plus each offered default (the execution's region, cluster and
    credentials: ``wire.protocol.PARAM_DEFAULTS``) whose field the model declares and the
    params leave unset; a type that declares no such field never sees it."""
    if not isinstance(defaults, dict) or not defaults:
        return params
    merged = dict(params)
    for name, info in model.model_fields.items():
        key = info.alias or name
        if key in defaults and key not in params and name not in params:
            merged[key] = defaults[key]
    return merged


def load_registry() -> TaskRegistry:
    """Task types come from the ``ecs_delegate.tasks`` entry point group, so this
    package never imports a handler module by name."""
    from importlib.metadata import entry_points

    registry = TaskRegistry()
    for ep in entry_points(group="ecs_delegate.tasks"):
        ep.load()(registry)
    return registry
