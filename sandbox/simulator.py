"""The thread that makes moto's ECS progress: every tick it walks each ECS backend in the
process, steps every simulated service (``sandbox.services``) and one-off task, and forgets
STOPPED tasks after an hour as ECS does.

Runs in the process that serves moto: nothing outside it can move moto's state.
"""

from __future__ import annotations

import datetime
import logging
import threading
import time

from moto.core.utils import utcnow
from moto.ecs.models import EC2ContainerServiceBackend, ecs_backends

from sandbox import cloudformation_patches, ecs_patches, services, tasks
from sandbox.runtime import CLOCK, LOCK
from sandbox.tasks import Change

log = logging.getLogger(__name__)

STOPPED_RETENTION = datetime.timedelta(hours=1)
PRUNE_EVERY_SECONDS = 60.0


class Simulator:
    """One per process, shared by every Sandbox in it (see ``acquire``/``release``)."""

    def __init__(self, tick: float = 0.2) -> None:
        if tick <= 0:
            raise ValueError(f"tick must be positive seconds, got {tick!r}")
        self.tick_seconds = tick
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_prune = time.monotonic()

    def start(self) -> None:
        ecs_patches.install()
        cloudformation_patches.install()
        CLOCK.tick_seconds = self.tick_seconds
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="sandbox-ecs-simulator",
                                        daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None

    def _run(self) -> None:
        next_at = time.monotonic()
        while not self._stop.is_set():
            try:
                self.step()
            except Exception:  # one bad object must not stop every service in the sandbox
                log.exception("sandbox simulator tick failed")
            next_at += self.tick_seconds
            delay = next_at - time.monotonic()
            if delay < 0:  # fell behind: do not try to catch up with a burst of ticks
                next_at = time.monotonic()
                delay = 0
            self._stop.wait(delay)

    def step(self) -> None:
        """One tick over every ECS backend of the process."""
        with LOCK:
            CLOCK.tick += 1
            tick = CLOCK.tick
            prune = time.monotonic() - self._last_prune >= PRUNE_EVERY_SECONDS
            if prune:
                self._last_prune = time.monotonic()
            for regions in list(ecs_backends.values()):
                for backend in list(regions.values()):
                    self._step_backend(backend, tick, prune)

    def _step_backend(self, backend: EC2ContainerServiceBackend, tick: int, prune: bool) -> None:
        controller = services.Controller(backend, tick, self.tick_seconds)
        for service in list(backend.services.values()):
            controller.step(service)
        runs = backend.__dict__.get("_sandbox_runs")
        if runs:
            for arn, task in list(runs.items()):
                if tasks.step(task, tick) is Change.STOPPED:
                    del runs[arn]
        if prune:
            _prune_stopped(backend)


def _prune_stopped(backend: EC2ContainerServiceBackend) -> None:
    horizon = utcnow() - STOPPED_RETENTION
    for cluster_tasks in backend.tasks.values():
        for arn, task in list(cluster_tasks.items()):
            stopped_at = getattr(task, "stopped_at", None)
            if stopped_at is not None and stopped_at < horizon:
                del cluster_tasks[arn]


_shared: Simulator | None = None
_users = 0


def acquire(tick: float) -> Simulator:
    """Start the process's simulator, or share the running one (moto's state is
    process-wide, so two simulators would step the same services twice)."""
    global _shared, _users
    with LOCK:
        if _shared is None:
            _shared = Simulator(tick)
            _shared.start()
        _users += 1
        return _shared


def release() -> None:
    global _shared, _users
    with LOCK:
        _users -= 1
        if _users > 0 or _shared is None:
            return
        simulator, _shared = _shared, None
    simulator.stop()
