"""The delegate's link to its manager, as I/O: a websocket, frames in, frames out.

Every decision is :class:`agent.connection.DelegateConnection`'s; this module opens the
socket, parses each frame, hands it over, and carries out the actions it gets back on the
runner, the outbox and the socket. Per connection it runs four loops (receive, send
control messages, send task messages, heartbeat); when one ends, the socket is closed and
the others are cancelled. Whether and when to connect again is :mod:`agent.reconnect`'s
(a pure backoff and a table of fatal errors).
"""

from __future__ import annotations

import asyncio
import contextlib
import platform
import ssl
import time
import uuid
from collections.abc import Coroutine
from datetime import UTC, datetime
from typing import Any

import structlog
import websockets
from pydantic import BaseModel
from websockets.asyncio.client import ClientConnection

from agent import __version__
from agent.config import Settings
from agent.connection import (
    AbortTask,
    AckTask,
    Action,
    Close,
    DelegateConnection,
    DropTask,
    RewindOutbox,
    RewindTask,
    Send,
    StartTask,
    State,
    parse_frame,
)
from agent.errors import ManagerRefused, UnreadableFrame
from agent.outbox import Outbox
from agent.reconnect import Backoff, describe, fatal_error, is_retryable
from agent.runner import Runner
from wire import auth
from wire.protocol import MAX_MESSAGE_BYTES, SUPPORTED_PROTOCOL_VERSIONS, Register, dump

log = structlog.get_logger("agent.session")

REGISTER_TIMEOUT = 15.0


def ssl_context(settings: Settings) -> ssl.SSLContext | None:
    if not settings.ws_url.startswith("wss://"):
        return None
    return ssl.create_default_context(
        cafile=str(settings.manager_ca_bundle) if settings.manager_ca_bundle else None)


class Session:
    def __init__(self, settings: Settings, runner: Runner, outbox: Outbox, *,
                 task_types: list[str], instance_id: str | None = None,
                 reconnect_min: float = 0.5) -> None:
        self.settings = settings
        self.runner = runner
        self.outbox = outbox
        self.task_types = task_types
        self.instance_id = instance_id or uuid.uuid4().hex
        self.connection = DelegateConnection()
        # For waiters only ("until registered"); the state is the connection's.
        self.registered = asyncio.Event()
        self.reconnects = 0
        self._token = settings.token()
        self._reconnect_min = reconnect_min
        self._ws: ClientConnection | None = None
        self._control: asyncio.Queue[str] | None = None
        self._stopping = asyncio.Event()

    @property
    def send_task_messages(self) -> bool:
        """False when task messages travel over the HTTP log service instead."""
        return self.connection.send_task_messages

    @send_task_messages.setter
    def send_task_messages(self, value: bool) -> None:
        self.connection.send_task_messages = value

    # ------------------------------------------------------------------ lifecycle

    async def run(self) -> None:
        """Stay connected until :meth:`stop`. Raises ManagerRefused when refused for
        good, ManagerNotTrusted for a certificate we cannot verify."""
        delays = Backoff(self._reconnect_min, self.settings.reconnect_max)
        while not self._stopping.is_set():
            started = time.monotonic()
            ended = await self._connect_once()
            if self._stopping.is_set():
                return
            if ended.fatal:
                raise ManagerRefused(ended.reason)
            delay = delays.after(time.monotonic() - started)
            self.reconnects += 1
            log.warning("manager connection lost; reconnecting", in_seconds=round(delay, 2),
                        reason=ended.reason)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), timeout=delay)

    async def stop(self) -> None:
        self._stopping.set()
        self.connection.stop()
        if self._ws is not None:
            await self._ws.close(1000, "delegate stopping")

    async def _connect_once(self) -> Close:
        try:
            async with websockets.connect(
                self.settings.ws_url, ssl=ssl_context(self.settings),
                max_size=MAX_MESSAGE_BYTES, open_timeout=10, close_timeout=5,
                ping_interval=20, ping_timeout=20, proxy=True,
                user_agent_header=f"ecs-delegate/{__version__}",
            ) as ws:
                self._ws = ws
                return await self._serve(ws)
        except Exception as exc:
            if self._stopping.is_set():
                return Close("delegate stopping")
            if is_retryable(exc):
                return Close(describe(exc))
            error = fatal_error(exc)
            if error is exc:
                raise
            raise error from exc
        finally:
            self._ws = None
            self.connection.lost()
            self.registered.clear()

    # ------------------------------------------------------------------ one connection

    async def _serve(self, ws: ClientConnection) -> Close:
        if self.connection.state is State.CLOSED:
            return Close("delegate stopping")  # stopped while the socket opened
        self._control = asyncio.Queue()
        self._apply(self.connection.connected(self._register()))
        loops: dict[str, Coroutine[Any, Any, Any]] = {
            "receive": self._receive(ws), "send-control": self._send_control(ws, self._control),
            "heartbeat": self._heartbeat()}
        if self.send_task_messages:
            loops["send-tasks"] = self._send_tasks(ws)
        tasks = [asyncio.create_task(c, name=f"session:{n}") for n, c in loops.items()]
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            self._control = None
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        for t in done:
            if (exc := t.exception()) is not None:
                raise exc
        result = tasks[0].result() if tasks[0] in done else None
        return result if isinstance(result, Close) else Close("connection ended")

    def _register(self) -> Register:
        s = self.settings
        return Register(
            auth=auth.sign(self._token, account_id=s.account_id,
                           delegate_name=s.delegate_name),
            protocol_versions=list(SUPPORTED_PROTOCOL_VERSIONS),
            account_id=s.account_id, name=s.delegate_name, tags=s.delegate_tags,
            version=__version__, hostname=platform.node(), instance_id=self.instance_id,
            capacity=s.max_concurrent_tasks, task_types=self.task_types,
            running_tasks=sorted(set(self.runner.running_ids()) | set(self.outbox.task_ids())),
        )

    async def _receive(self, ws: ClientConnection) -> Close:
        try:
            first = await asyncio.wait_for(ws.recv(), timeout=REGISTER_TIMEOUT)
        except TimeoutError:
            return Close(f"the manager did not answer 'register' within {REGISTER_TIMEOUT:g}s")
        if ended := self._on_frame(first):
            return ended
        async for raw in ws:
            if ended := self._on_frame(raw):
                return ended
        return Close("connection closed by manager")

    def _on_frame(self, raw: str | bytes) -> Close | None:
        try:
            msg = parse_frame(raw)
        except UnreadableFrame as err:
            return self._apply(self.connection.unreadable(err, len(raw)))
        was_registered = self.connection.registered
        ended = self._apply(self.connection.receive(
            msg, now=time.monotonic(), free_slots=self.runner.free_slots))
        if self.connection.registered and not was_registered:
            self.registered.set()
            log.info("registered with manager", delegate_id=self.connection.delegate_id,
                     url=self.settings.http_base, tags=self.settings.delegate_tags,
                     protocol=getattr(msg, "protocol_version", None))
        return ended

    async def _send_control(self, ws: ClientConnection, queue: asyncio.Queue[str]) -> None:
        while True:
            await ws.send(await queue.get())

    async def _send_tasks(self, ws: ClientConnection) -> None:
        await self.registered.wait()
        while True:
            await self.outbox.wait_unsent()
            for text in self.outbox.take_unsent():
                await ws.send(text)

    async def _heartbeat(self) -> None:
        await self.registered.wait()
        while True:
            await asyncio.sleep(self.connection.heartbeat_interval)
            self._apply(self.connection.heartbeat(self.runner.running_ids(),
                                                  datetime.now(UTC)))

    # ------------------------------------------------------------------ carrying out

    def _apply(self, actions: list[Action]) -> Close | None:
        """Do what the connection decided; a Close ends this connection."""
        for action in actions:
            match action:
                case Send(message):
                    self._send(message)
                case StartTask(spec):
                    self._apply(self.connection.task_started(spec, self.runner.start(spec)))
                case AbortTask(task_id, reason, report):
                    if not self.runner.abort(task_id, reason, report=report) and report:
                        log.info("abort for a task not running here", task_id=task_id)
                case DropTask(task_id):
                    self.outbox.drop(task_id)
                case AckTask(task_id, seq):
                    self.outbox.ack(task_id, seq)
                case RewindOutbox(acked):
                    self.outbox.rewind(acked)
                case RewindTask(task_id, after_seq):
                    if not self.outbox.rewind_task(task_id, after_seq):
                        log.info("nothing to resend for this task", task_id=task_id)
                case Close():
                    return action
        return None

    def _send(self, message: BaseModel) -> None:
        # Queued for the control loop: a decision never waits on the socket. Without a
        # connection there is nobody to tell; registration says it all again.
        if self._control is not None:
            self._control.put_nowait(dump(message))

    # ------------------------------------------------------------------ called by others

    def pull(self) -> None:
        """Ask for work again (a slot came free)."""
        self._apply(self.connection.pull(self.runner.free_slots))

    def drain(self) -> None:
        """Take no more work; the manager hears it now, or at the next registration."""
        self._apply(self.connection.drain())
