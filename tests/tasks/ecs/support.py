"""Run an ECS handler without the manager: a TaskContext whose log is a list."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from agent.context import TaskContext, TaskLog
from wire.protocol import EventPayload, LogPayload, TaskPayload, UnitPayload, UnitStatus


class MemoryFiles:
    def __init__(self, files: dict[str, bytes] | None = None) -> None:
        self.files = dict(files or {})

    async def get(self, path: str) -> bytes:
        try:
            return self.files[path]
        except KeyError:
            raise FileNotFoundError(path) from None


@dataclass
class Recorded:
    payloads: list[TaskPayload] = field(default_factory=list)

    def lines(self, unit: str | None = None) -> list[str]:
        return [line.text for p in self.payloads if isinstance(p, LogPayload)
                and (unit is None or p.unit == unit) for line in p.lines]

    def text(self, unit: str | None = None) -> str:
        return "\n".join(self.lines(unit))

    def events(self) -> list[EventPayload]:
        return [p for p in self.payloads if isinstance(p, EventPayload)]

    def unit_status(self) -> dict[str, UnitStatus]:
        status: dict[str, UnitStatus] = {}
        for p in self.payloads:
            if isinstance(p, UnitPayload):
                status[p.unit] = p.status
        return status


def make_ctx(task_type: str, params: Any, *, secrets: dict[str, str] | None = None,
             context: dict[str, Any] | None = None,
             files: dict[str, bytes] | None = None) -> tuple[TaskContext, Recorded]:
    recorded = Recorded()
    ctx = TaskContext(task_id=uuid.uuid4().hex, type=task_type, params=params,
                      secrets=secrets or {}, context=context or {},
                      log=TaskLog(recorded.payloads.append), files=MemoryFiles(files))
    return ctx, recorded
