"""Reading one frame from a delegate: pure, so every way a frame can be bad is answered
by an :class:`~wire.protocol.Error` naming what was wrong, never by an exception."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from wire import jsonlimits
from wire.protocol import MAX_MESSAGE_BYTES, Error, delegate_message_adapter

DELEGATE_TYPES = ("register", "heartbeat", "pull", "accept", "reject", "draining", "task_msg")


def parse(text: str) -> Any:
    """The delegate message in ``text``, or the :class:`Error` to answer it with."""
    size = len(text.encode())
    if size > MAX_MESSAGE_BYTES:
        return Error(reason=f"message of {size} bytes is over the limit of "
                            f"{MAX_MESSAGE_BYTES} bytes; it was not stored")
    try:
        data = jsonlimits.loads(text)
    except jsonlimits.TooDeep as exc:
        return Error(reason=f"message refused: {exc}")
    except ValueError as exc:
        return Error(reason=f"message is not JSON: {exc}")
    if not isinstance(data, dict) or "type" not in data:
        return Error(reason="message is not a JSON object with a 'type' field")
    kind = data["type"]
    task_id = data.get("task_id") if isinstance(data.get("task_id"), str) else None
    if kind not in DELEGATE_TYPES:
        return Error(reason=f"unknown message type {kind!r}; expected one of "
                            f"{', '.join(DELEGATE_TYPES)}", task_id=task_id)
    try:
        return delegate_message_adapter.validate_python(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc'][1:]) or '(message)'}: {err['msg']}"
            for err in exc.errors()[:5])
        return Error(reason=f"invalid {kind} message: {problems}", task_id=task_id)
