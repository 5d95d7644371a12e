"""The delegate process, assembled: one supervisor that owns every long-lived task.

:meth:`Delegate.run` opens the health port (so a port in use fails start-up at once),
then runs in one task group: the session, the health endpoint, event-loop lag sampling,
the HTTP log service when configured, and the shutdown that waits for
:meth:`Delegate.request_shutdown`. When the session ends (stopped, or refused for good)
the rest is cancelled and closed. Nothing is fire-and-forget.

Shutdown is ordered and idempotent: stop taking work, tell the manager we are draining,
let running tasks finish within the grace period, abort what is left with "delegate
stopping", flush their messages, close the connection.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import structlog

from agent.config import Settings
from agent.context import TaskRegistry, load_registry
from agent.files import ManagerFileStore
from agent.health import DelegateMetrics, HealthServer
from agent.lag import sample_lag
from agent.logservice import LogServiceSender
from agent.outbox import Outbox
from agent.runner import Runner
from agent.session import Session
from agent.status import DelegateStatus

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
        self.log_service: LogServiceSender | None = None
        if settings.log_streaming_service_url:
            # Task messages go over HTTP; the websocket carries only control messages.
            self.log_service = LogServiceSender(settings, self.outbox)
            self.session.send_task_messages = False
        self.loop_lag = 0.0
        self._stop_requested = asyncio.Event()
        self._shutdown_started = False
        self._session_task: asyncio.Task[None] | None = None
        self.health: HealthServer | None = None
        if settings.health_port is not None:
            # Last: registering its collector already reads a status.
            self.health = HealthServer(self.status, self.metrics, settings.health_host,
                                       settings.health_port)

    def _on_task_finished(self, task_id: str) -> None:
        if not self._shutdown_started:
            self.session.pull()

    def _record_lag(self, seconds: float) -> None:
        self.loop_lag = seconds

    # ------------------------------------------------------------------ the supervisor

    async def run(self) -> None:
        """Run until stopped. Raises HealthPortError before connecting when the health
        port cannot be opened; ManagerRefused or ManagerNotTrusted when the manager
        cannot be used."""
        try:
            if self.health is not None:
                await self.health.open()
            async with asyncio.TaskGroup() as group:
                self._session_task = group.create_task(self.session.run(), name="session")
                helpers = [group.create_task(c, name=n) for n, c in self._helpers().items()]
                await asyncio.wait({self._session_task})
                for task in helpers:
                    task.cancel()
        except BaseExceptionGroup as errors:
            raise _sole(errors) from None
        finally:
            await self._close()

    def _helpers(self) -> dict[str, Any]:
        helpers: dict[str, Any] = {"lag": sample_lag(self._record_lag),
                                   "shutdown": self._shutdown_when_requested()}
        if self.health is not None:
            helpers["health"] = self.health.serve()
        if self.log_service is not None:
            helpers["log-service"] = self.log_service.run()
        return helpers

    def request_shutdown(self) -> None:
        """Ask :meth:`run` to drain and stop (a signal handler may call this). Idempotent."""
        self._stop_requested.set()

    async def _shutdown_when_requested(self) -> None:
        await self._stop_requested.wait()
        await self.shutdown()

    async def shutdown(self, grace: float | None = None) -> list[str]:
        """Drain and stop. Returns the ids of tasks that had to be aborted."""
        if self._shutdown_started:
            return []
        self._shutdown_started = True
        grace = self.settings.shutdown_grace if grace is None else grace
        log.info("stopping: no new tasks; waiting for running tasks",
                 running=len(self.runner.running_ids()), grace_seconds=grace)
        self.session.drain()
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
        connecting (a hung manager: up to the 10 s open timeout) is cancelled, so the
        process exits now and not after ECS's stopTimeout."""
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
        await self.files.aclose()
        for hook in self.registry.shutdown_hooks:
            try:
                await hook()
            except Exception as exc:  # closing must go on whatever one hook does
                log.warning("shutdown hook failed", hook=getattr(hook, "__name__", hook),
                            error=str(exc))
        if self.log_service is not None:
            await self.log_service.aclose()

    # ------------------------------------------------------------------ what health reads

    def status(self) -> DelegateStatus:
        now = time.monotonic()
        conn = self.session.connection
        ready, why = conn.readiness(now)
        last = conn.last_heartbeat_ack
        return DelegateStatus(
            ready=ready, readiness=why, connected=conn.registered,
            reconnects=self.session.reconnects,
            heartbeat_age=None if last is None else now - last,
            task_types=tuple(self.registry.names()),
            running_types=tuple(self.runner.running_types()),
            finished=dict(self.runner.stats.finished),
            lines_sent=self.outbox.lines_acked, lines_buffered=self.outbox.lines_buffered,
            lines_dropped=self.outbox.lines_dropped,
            messages_buffered=self.outbox.buffered, loop_lag=self.loop_lag,
        )


def _sole(errors: BaseExceptionGroup[BaseException]) -> BaseException:
    """The task group's one error as itself (callers catch ManagerRefused, not a group);
    several at once stay a group."""
    leaves = errors.exceptions
    if len(leaves) == 1 and not isinstance(leaves[0], BaseExceptionGroup):
        return leaves[0]
    return errors
