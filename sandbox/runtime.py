"""Process-wide sandbox state: the lock and the simulator clock.

moto keeps one state per process and serves requests from werkzeug threads, so every
request and every simulator tick runs under one re-entrant lock, and every Sandbox in a
process shares one simulator clock.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

LOCK = threading.RLock()


@dataclass
class Clock:
    tick: int = 0
    tick_seconds: float = 0.2
    throttle: bool = False
    # How long a deregistered revision still works (sandbox/revisions.py), simulated seconds.
    inactive_grace_seconds: float = 0.0


CLOCK = Clock()
