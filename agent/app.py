"""The delegate process, assembled: outbox, runner, session, and ordered shutdown.

One supervisor (this object) owns every long-lived coroutine. Shutdown is ordered and
idempotent: stop taking work, tell the manager we are draining, let running tasks finish
within the grace period, abort what is left with "delegate stopping", flush their
messages, close the connection.
"""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path
from typing import Any

import structlog

from agent.config import Settings
from agent.context import TaskRegistry, load_registry
from agent.files import ManagerFileStore
from agent.health import DelegateMetrics
from agent.logservice import LogServiceSender
from agent.outbox import Outbox
from agent.runner import Runner
from agent.session import Session

log = structlog.get_logger("agent.app")

FLUSH_TIMEOUT = 10.0
# How long a session whose websocket was just closed may take to notice before it is
# cancelled (it normally ends at once).
SESSION_END_TIMEOUT = 1.0


class Delegate:
    def __init__(self, settings: Settings, registry: TaskRegistry | None = None, *,
                 reconnect_min: float = 0.5) -> None:
        self.settings = settings
        self.registry = registry or load_registry()
        spill = Path(settings.state_dir) / "outbox" if settings.state_dir else None
        self.outbox = Outbox(spill_dir=spill)
        self.files = ManagerFileStore(settings)
        self.metrics = DelegateMetrics()
        self.runner = Runner(self.registry, capacity=settings.max_concurrent_tasks,
                             outbox=self.outbox, files=self.files,
                             base_secrets=(settings.token(),),
                             on_finished=self._on_task_finished,
                             aws_call_observer=self.metrics.observe_aws_call,
                             task_observer=self.metrics.observe_task)
        self.session = Session(settings, self.runner, self.outbox,
                               task_types=self.registry.names(), reconnect_min=reconnect_min)
        self._background: set[asyncio.Task[Any]] = set()
        self.log_service: LogServiceSender | None = None
        if settings.log_streaming_service_url:
            # Task messages go over HTTP; the websocket carries only control messages.
            self.log_service = LogServiceSender(settings, self.outbox)
            self.session.send_task_messages = False
        self._shutdown_started = False
        self._session_task: asyncio.Task[None] | None = None

    def _spawn(self, coro: Any, name: str) -> None:
        task = asyncio.create_task(coro, name=name)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    def _on_task_finished(self, task_id: str) -> None:
        if not self._shutdown_started:
            self._spawn(self.session.send_pull(), name=f"pull-after:{task_id}")

    async def run(self) -> None:
        """Run until :meth:`shutdown` finishes (or the manager refuses us for good)."""
        if self.log_service is not None:
            self._spawn(self.log_service.run(), name="log-service")
        self._session_task = asyncio.create_task(self.session.run(), name="session")
        try:
            await self._session_task
        except asyncio.CancelledError:
            # Only :meth:`shutdown` cancels the session task; a cancellation of this
            # task itself must still propagate.
            current = asyncio.current_task()
            if current is not None and current.cancelling():
                raise
        finally:
            await self._close()

    async def shutdown(self, grace: float | None = None) -> list[str]:
        """Drain and stop. Returns the ids of tasks that had to be aborted."""
        if self._shutdown_started:
            return []
        self._shutdown_started = True
        grace = self.settings.shutdown_grace if grace is None else grace
        log.info("stopping: no new tasks; waiting for running tasks",
                 running=len(self.runner.running_ids()), grace_seconds=grace)
        await self.session.announce_draining()
        aborted = await self.runner.drain(grace)
        if aborted:
            log.warning("aborted tasks that did not finish in time", tasks=aborted)
        try:
            await asyncio.wait_for(self.outbox.wait_all_acked(), timeout=FLUSH_TIMEOUT)
        except TimeoutError:
            log.error("manager did not confirm every message before exit",
                      unconfirmed=self.outbox.buffered)
        await self.session.stop()
        await self._end_session()
        return aborted

    async def _end_session(self) -> None:
        """A connected session ends as soon as its websocket is closed; one that is
        connecting (a hung manager: up to the 10 s open timeout) or waiting out a
        reconnect backoff (up to RECONNECT_MAX_DELAY) is cancelled, so the process
        exits now and not after ECS's stopTimeout."""
        task = self._session_task
        if task is None or task.done():
            return
        await asyncio.wait({task}, timeout=SESSION_END_TIMEOUT)
        if not task.done():
            log.info("stopping the manager connection attempt")
            task.cancel()

    def hurry(self) -> None:
        """A second SIGTERM: abort what is still running now."""
        for task_id in self.runner.running_ids():
            self.runner.abort(task_id, "delegate stopping")

    async def _close(self) -> None:
        for task in list(self._background):
            task.cancel()
        with contextlib.suppress(Exception):
            await asyncio.gather(*self._background, return_exceptions=True)
        await self.files.aclose()
        for hook in self.registry.shutdown_hooks:
            try:
                await hook()
            except Exception as exc:  # closing must go on whatever one hook does
                log.warning("shutdown hook failed", hook=getattr(hook, "__name__", hook),
                            error=str(exc))
        if self.log_service is not None:
            await self.log_service.aclose()
