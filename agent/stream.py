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
from wire.protocol import (
    EventPayload,
    LogLine,
    LogPayload,
    ResultPayload,
    TaskPayload,
)

# One log line or event message at most this long: a longer one is cut, with a note, so a
# single giant line (a dumped file, a binary blob) can never make a frame the manager
# refuses — which would cost a reconnect and the same refusal again.
MAX_LINE_CHARS = 64 * 1024


def clip(text: str) -> str:
    if len(text) <= MAX_LINE_CHARS:
        return text
    return (text[:MAX_LINE_CHARS]
            + f" ... [line cut: {len(text) - MAX_LINE_CHARS} more characters not sent]")


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

    def emit(self, payload: TaskPayload) -> None:
        if isinstance(payload, LogPayload):
            if self._unit is not None and payload.unit != self._unit:
                self.flush()
            self._unit = payload.unit
            for line in payload.lines:
                text = clip(self.masker(line.text))
                self._lines.append(line.model_copy(update={"text": text}))
                self._bytes += len(text) + 40
            if len(self._lines) >= self._max_lines or self._bytes >= self._max_bytes:
                self.flush()
            elif self._timer is None:
                self._timer = asyncio.get_running_loop().call_later(self._delay, self.flush)
            return
        self.flush()
        if isinstance(payload, EventPayload):
            payload = payload.model_copy(
                update={"message": clip(self.masker(payload.message))})
        elif isinstance(payload, ResultPayload):
            payload = payload.model_copy(update={
                "output": self._mask_json(payload.output),
                "error": clip(self.masker(payload.error)) if payload.error else None,
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
        return fit_output(masked)


MAX_OUTPUT_CHARS = 256 * 1024


def fit_output(output: dict[str, Any]) -> dict[str, Any]:
    """Keep a result under the frame limit: the largest values are replaced by a note
    until it fits (an output is for later steps, not for bulk data)."""
    sizes = {k: len(json.dumps(v, default=str)) for k, v in output.items()}
    total = sum(sizes.values())
    fitted = dict(output)
    for key in sorted(sizes, key=sizes.__getitem__, reverse=True):
        if total <= MAX_OUTPUT_CHARS:
            break
        fitted[key] = f"<not sent: {sizes[key]} characters, over the output limit>"
        total -= sizes[key]
    return fitted
