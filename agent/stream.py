"""What a task emits, on its way to the outbox: masked, then batched.

Log lines of the same unit are merged into one message until ``max_lines`` or
``max_bytes`` or ``delay`` seconds pass, whichever comes first; any other payload (unit
status, event, result) first flushes the pending batch, so order is kept.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from agent.masking import Masker
from agent.outbox import Outbox
from agent.protocol import (
    EventPayload,
    LogLine,
    LogPayload,
    ResultPayload,
    TaskPayload,
)


class TaskStream:
    def __init__(self, task_id: str, outbox: Outbox, masker: Masker, *,
                 max_lines: int = 500, max_bytes: int = 256 << 10,
                 delay: float = 0.05) -> None:
        self.task_id = task_id
        self._outbox = outbox
        self.masker = masker
        self._max_lines = max_lines
        self._max_bytes = max_bytes
        self._delay = delay
        self._unit: str | None = None
        self._lines: list[LogLine] = []
        self._bytes = 0
        self._timer: asyncio.TimerHandle | None = None
        self.lines_emitted = 0

    def emit(self, payload: TaskPayload) -> None:
        if isinstance(payload, LogPayload):
            if self._unit is not None and payload.unit != self._unit:
                self.flush()
            self._unit = payload.unit
            for line in payload.lines:
                text = self.masker(line.text)
                self._lines.append(line.model_copy(update={"text": text}))
                self._bytes += len(text) + 40
            self.lines_emitted += len(payload.lines)
            if len(self._lines) >= self._max_lines or self._bytes >= self._max_bytes:
                self.flush()
            elif self._timer is None:
                self._timer = asyncio.get_running_loop().call_later(self._delay, self.flush)
            return
        self.flush()
        if isinstance(payload, EventPayload):
            payload = payload.model_copy(update={"message": self.masker(payload.message)})
        elif isinstance(payload, ResultPayload):
            payload = payload.model_copy(update={
                "output": self._mask_json(payload.output),
                "error": self.masker(payload.error) if payload.error else None,
            })
        self._outbox.add(self.task_id, payload)

    def flush(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._lines and self._unit is not None:
            self._outbox.add(self.task_id, LogPayload(unit=self._unit, lines=self._lines))
        self._lines = []
        self._bytes = 0

    def _mask_json(self, value: dict[str, Any]) -> dict[str, Any]:
        # Masking the JSON text catches a secret anywhere in the output, in any of its
        # forms; the escaped form of each secret is among the masked forms.
        masked: dict[str, Any] = json.loads(self.masker(json.dumps(value, default=str)))
        return masked
