"""What the delegate is doing, frozen at one moment: the only thing health and metrics
read. The supervisor (:class:`agent.app.Delegate`) builds it on demand; nothing here
reaches back into the session, the runner or the outbox."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True)
class DelegateStatus:
    ready: bool
    # Why not ready ("draining", "not connected to the manager", ...), or "ready".
    readiness: str
    connected: bool
    reconnects: int
    # Seconds since the manager last answered a heartbeat; None before the first one.
    heartbeat_age: float | None
    task_types: tuple[str, ...]
    running_types: tuple[str, ...]
    # (task type, status) -> how many tasks finished so
    finished: Mapping[tuple[str, str], int] = field(default_factory=dict)
    lines_sent: int = 0
    lines_buffered: int = 0
    lines_dropped: int = 0
    messages_buffered: int = 0
    loop_lag: float = 0.0
