"""The delegate's connection to its manager: connect, register, heartbeat, pull, reconnect.

One :class:`Session` owns the websocket and three loops per connection (receive, send,
heartbeat); when any of them ends, the connection is closed and the others cancelled.
Reconnects back off exponentially with full jitter (tenacity), capped at
``reconnect_max``, and the backoff starts over after a connection that stayed healthy
for :data:`HEALTHY_PERIOD` seconds.

Errors, and what they do:

* connection refused / dropped / timed out -> reconnect with backoff;
* ``Refused(fatal=True)`` (wrong or revoked token, wrong account) -> :class:`FatalError`,
  the process ends with the manager's reason;
* ``Disconnect(fatal=True)`` (token revoked while connected) -> :class:`FatalError`;
* a frame we cannot parse -> logged, ignored: the manager is trusted but may be newer.
"""

from __future__ import annotations

import asyncio
import contextlib
import platform
import ssl
import time
import uuid
from datetime import UTC, datetime
from typing import Any

import structlog
import websockets
from pydantic import ValidationError
from tenacity import AsyncRetrying, retry_if_exception_type, wait_random_exponential
from websockets.asyncio.client import ClientConnection

from agent import __version__
from agent.config import Settings
from agent.outbox import Outbox
from agent.runner import Runner
from wire import auth
from wire.protocol import (
    MAX_MESSAGE_BYTES,
    SUPPORTED_PROTOCOL_VERSIONS,
    Abort,
    Accept,
    Ack,
    Assign,
    Disconnect,
    Draining,
    Error,
    Heartbeat,
    HeartbeatAck,
    Pull,
    Refused,
    Register,
    Registered,
    Reject,
    dump,
    manager_message_adapter,
)

log = structlog.get_logger("agent.session")

HEALTHY_PERIOD = 30.0


class FatalError(Exception):
    """The manager refused this delegate for good; retrying cannot help."""


class _Reconnect(Exception):
    """The connection ended; connect again after a backoff."""


class _HealthyDrop(Exception):
    """The connection ended after a healthy period: reconnect with a fresh backoff."""


def ssl_context(settings: Settings) -> ssl.SSLContext | None:
    if not settings.ws_url.startswith("wss://"):
        return None
    ctx = ssl.create_default_context(
        cafile=str(settings.manager_ca_bundle) if settings.manager_ca_bundle else None
    )
    return ctx


class Session:
    def __init__(self, settings: Settings, runner: Runner, outbox: Outbox, *,
                 task_types: list[str], instance_id: str | None = None,
                 reconnect_min: float = 0.5) -> None:
        self.settings = settings
        self.runner = runner
        self.outbox = outbox
        self.task_types = task_types
        self.instance_id = instance_id or uuid.uuid4().hex
        self._token = settings.token()
        self._reconnect_min = reconnect_min
        self._ws: ClientConnection | None = None
        self._stopping = asyncio.Event()
        self.draining = False
        self.registered = asyncio.Event()
        self.delegate_id: str | None = None
        self.heartbeat_interval = 10.0
        self.last_heartbeat_ack: float | None = None
        self.reconnects = 0
        # False when task messages travel over the HTTP log service instead.
        self.send_task_messages = True

    # ------------------------------------------------------------------ lifecycle

    async def run(self) -> None:
        """Stay connected until :meth:`stop`. Raises FatalError when refused for good."""
        while not self._stopping.is_set():
            try:
                async for attempt in AsyncRetrying(
                    wait=wait_random_exponential(multiplier=self._reconnect_min,
                                                 max=self.settings.reconnect_max),
                    retry=retry_if_exception_type(_Reconnect),
                    before_sleep=self._before_sleep,
                ):
                    with attempt:
                        await self._connect_once()
                return
            except _HealthyDrop:
                continue

    async def stop(self) -> None:
        self._stopping.set()
        if self._ws is not None:
            await self._ws.close(1000, "delegate stopping")

    def _before_sleep(self, state: Any) -> None:
        self.reconnects += 1
        delay = state.next_action.sleep if state.next_action else 0
        exc = state.outcome.exception() if state.outcome else None
        log.warning("manager connection lost; reconnecting", in_seconds=round(delay, 2),
                    reason=str(exc.__cause__ or exc) if exc else None)

    async def _connect_once(self) -> None:
        if self._stopping.is_set():
            return
        started = time.monotonic()
        try:
            async with websockets.connect(
                self.settings.ws_url, ssl=ssl_context(self.settings),
                max_size=MAX_MESSAGE_BYTES, open_timeout=10, close_timeout=5,
                ping_interval=20, ping_timeout=20, proxy=True,
                user_agent_header=f"ecs-delegate/{__version__}",
            ) as ws:
                self._ws = ws
                await self._register(ws)
                await self._serve(ws)
        except FatalError:
            raise
        except (OSError, TimeoutError, websockets.exceptions.WebSocketException) as exc:
            if self._stopping.is_set():
                return
            raise self._drop(started, exc) from exc
        finally:
            self._ws = None
            self.registered.clear()
        if not self._stopping.is_set():
            raise self._drop(started, ConnectionError("connection closed by manager"))

    def _drop(self, started: float, exc: BaseException) -> Exception:
        if time.monotonic() - started >= HEALTHY_PERIOD:
            log.warning("manager connection lost; reconnecting", reason=str(exc))
            self.reconnects += 1
            return _HealthyDrop(str(exc))
        return _Reconnect(str(exc))

    # ------------------------------------------------------------------ registration

    async def _register(self, ws: ClientConnection) -> None:
        s = self.settings
        credential = auth.sign(self._token, account_id=s.account_id,
                               delegate_name=s.delegate_name)
        await ws.send(dump(Register(
            auth=credential, protocol_versions=list(SUPPORTED_PROTOCOL_VERSIONS),
            account_id=s.account_id, name=s.delegate_name, tags=s.delegate_tags,
            version=__version__, hostname=platform.node(), instance_id=self.instance_id,
            capacity=s.max_concurrent_tasks, task_types=self.task_types,
            running_tasks=sorted(set(self.runner.running_ids()) | set(self.outbox.task_ids())),
            draining=self.draining,
        )))
        raw = await asyncio.wait_for(ws.recv(), timeout=15)
        msg = manager_message_adapter.validate_json(raw)
        if isinstance(msg, Refused):
            if msg.fatal:
                raise FatalError(f"manager refused this delegate: {msg.reason}")
            raise _Reconnect(msg.reason)
        if not isinstance(msg, Registered):
            raise _Reconnect(f"expected 'registered', got {msg.type!r}")
        self.delegate_id = msg.delegate_id
        self.heartbeat_interval = msg.heartbeat_interval
        self.last_heartbeat_ack = time.monotonic()
        for task_id, reason in msg.cancel.items():
            log.warning("manager no longer expects this task; stopping it", task_id=task_id,
                        reason=reason)
            self.runner.abort(task_id, reason, report=False)
            self.outbox.drop(task_id)
        if self.send_task_messages:
            self.outbox.rewind(msg.acked)
        else:
            for task_id, seq in msg.acked.items():
                self.outbox.ack(task_id, seq)
        self.registered.set()
        log.info("registered with manager", delegate_id=msg.delegate_id,
                 url=self.settings.http_base, tags=self.settings.delegate_tags,
                 protocol=msg.protocol_version)
        if self.draining:
            await ws.send(dump(Draining()))
        else:
            await ws.send(dump(Pull(free_slots=self.runner.free_slots)))

    # ------------------------------------------------------------------ the connection

    async def _serve(self, ws: ClientConnection) -> None:
        loops = [
            asyncio.create_task(self._receive(ws), name="session:receive"),
            asyncio.create_task(self._heartbeat(ws), name="session:heartbeat"),
        ]
        if self.send_task_messages:
            loops.append(asyncio.create_task(self._send(ws), name="session:send"))
        try:
            done, _ = await asyncio.wait(loops, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for t in loops:
                t.cancel()
            await asyncio.gather(*loops, return_exceptions=True)
        for t in done:
            exc = t.exception()
            if exc is not None:
                raise exc

    async def _receive(self, ws: ClientConnection) -> None:
        async for raw in ws:
            try:
                msg = manager_message_adapter.validate_json(raw)
            except ValidationError as exc:
                log.warning("unreadable message from manager; ignored",
                            error=str(exc).splitlines()[0], size=len(raw))
                continue
            await self._handle(ws, msg)

    async def _handle(self, ws: ClientConnection, msg: Any) -> None:
        if isinstance(msg, Ack):
            self.outbox.ack(msg.task_id, msg.seq)
        elif isinstance(msg, Assign):
            reason = self.runner.start(msg.task)
            if reason is None:
                await ws.send(dump(Accept(task_id=msg.task.task_id)))
                log.info("task started", task_id=msg.task.task_id, type=msg.task.type)
            else:
                await ws.send(dump(Reject(task_id=msg.task.task_id, reason=reason)))
        elif isinstance(msg, Abort):
            if not self.runner.abort(msg.task_id, msg.reason):
                log.info("abort for a task not running here", task_id=msg.task_id)
        elif isinstance(msg, HeartbeatAck):
            self.last_heartbeat_ack = time.monotonic()
        elif isinstance(msg, Error):
            log.warning("manager reported an error", reason=msg.reason, task_id=msg.task_id)
        elif isinstance(msg, Disconnect):
            if msg.fatal:
                raise FatalError(f"manager disconnected this delegate: {msg.reason}")
            raise _Reconnect(msg.reason)
        else:
            log.info("ignored message", type=getattr(msg, "type", "?"))

    async def _send(self, ws: ClientConnection) -> None:
        while True:
            await self.outbox.wait_unsent()
            batch = self.outbox.take_unsent()
            for text in batch:
                await ws.send(text)

    async def _heartbeat(self, ws: ClientConnection) -> None:
        while True:
            await asyncio.sleep(self.heartbeat_interval)
            await ws.send(dump(Heartbeat(running_tasks=self.runner.running_ids(),
                                         sent_at=datetime.now(UTC))))

    # ------------------------------------------------------------------ called by others

    async def send_pull(self) -> None:
        ws = self._ws
        if ws is None or not self.registered.is_set():
            return
        with contextlib.suppress(websockets.exceptions.ConnectionClosed):
            await ws.send(dump(Pull(free_slots=self.runner.free_slots)))

    async def announce_draining(self) -> None:
        self.draining = True
        ws = self._ws
        if ws is None or not self.registered.is_set():
            return
        with contextlib.suppress(websockets.exceptions.ConnectionClosed):
            await ws.send(dump(Draining()))

    @property
    def ready(self) -> bool:
        """Connected, registered, and a heartbeat answered within two intervals."""
        if not self.registered.is_set() or self.draining or self.last_heartbeat_ack is None:
            return False
        return time.monotonic() - self.last_heartbeat_ack <= 2 * self.heartbeat_interval + 1

