"""The delegate's side of the protocol, without I/O: messages in, actions out.

:class:`DelegateConnection` holds the state of one delegate's link to its manager
across reconnects and decides what every manager message means. It never touches a
socket, the runner or the outbox: it returns actions (:data:`Action`) and the session
(:mod:`agent.session`) carries them out, then tells the connection what came of it
(``task_started``). Time comes in as an argument, so every decision is a plain function
call in a test.

States and the transitions allowed between them::

    CONNECTING --connected()--> REGISTERING --registered--> OPEN <--drain()--+
         ^                           |                       |   \\          |
         +--- lost() / refused ------+---- lost(), disconnect +    DRAINING --+
    CLOSED: stop() from anywhere, or a fatal refusal; nothing leaves it.

``DRAINING`` is ``OPEN`` while the delegate is stopping: it takes no new work, but
still sends its tasks' messages and heartbeats. The wish to drain outlives a reconnect:
a delegate that reconnects while stopping registers as draining.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

import structlog
from pydantic import BaseModel, ValidationError

from agent.errors import ConnectionStateError, UnreadableFrame
from wire import jsonlimits
from wire.protocol import (
    Abort,
    Accept,
    Ack,
    Assign,
    Disconnect,
    Draining,
    Error,
    Heartbeat,
    HeartbeatAck,
    ManagerMessage,
    Pull,
    Refused,
    Register,
    Registered,
    Reject,
    Resend,
    TaskSpec,
    manager_message_adapter,
)

log = structlog.get_logger("agent.connection")

# After this many resends asked for by ``error`` frames without the manager acking
# anything more of that task, stop: the manager does not want these messages on this
# connection (a task it no longer gives us), and the next reconnect resends them anyway.
MAX_ERROR_RESENDS = 3


class State(StrEnum):
    CONNECTING = "connecting"
    REGISTERING = "registering"
    OPEN = "open"
    DRAINING = "draining"
    CLOSED = "closed"


_ALLOWED: dict[State, frozenset[State]] = {
    State.CONNECTING: frozenset({State.REGISTERING, State.CLOSED}),
    State.REGISTERING: frozenset({State.OPEN, State.DRAINING, State.CONNECTING,
                                  State.CLOSED}),
    State.OPEN: frozenset({State.DRAINING, State.CONNECTING, State.CLOSED}),
    State.DRAINING: frozenset({State.CONNECTING, State.CLOSED}),
    State.CLOSED: frozenset(),
}


# --------------------------------------------------------------------------- actions


@dataclass(frozen=True)
class Send:
    """Send this control message on the current connection."""

    message: BaseModel


@dataclass(frozen=True)
class StartTask:
    """Start the task; report back with :meth:`DelegateConnection.task_started`."""

    spec: TaskSpec


@dataclass(frozen=True)
class AbortTask:
    """Cancel a running task. ``report=False``: the manager no longer wants its result."""

    task_id: str
    reason: str
    report: bool = True


@dataclass(frozen=True)
class DropTask:
    """Forget the task's unsent and unacked messages."""

    task_id: str


@dataclass(frozen=True)
class AckTask:
    """The manager holds the task's messages up to ``seq``."""

    task_id: str
    seq: int


@dataclass(frozen=True)
class RewindOutbox:
    """After registration: the manager holds ``acked``; send every later message again."""

    acked: dict[str, int]


@dataclass(frozen=True)
class RewindTask:
    """Send the task's messages after ``after_seq`` again (``None``: after its last ack)."""

    task_id: str
    after_seq: int | None


@dataclass(frozen=True)
class Close:
    """End this connection. ``fatal``: do not connect again (the process ends)."""

    reason: str
    fatal: bool = False


Action = Send | StartTask | AbortTask | DropTask | AckTask | RewindOutbox | RewindTask | Close


def parse_frame(raw: str | bytes) -> ManagerMessage:
    """One frame from the manager, or :class:`UnreadableFrame` saying why not.

    Nesting deeper than ``wire.jsonlimits.MAX_DEPTH`` is refused (a ``ValueError``) before
    parsing, so a deeply nested frame is unreadable here, never a RecursionError."""
    try:
        jsonlimits.check_depth(raw)  # the same bound as the manager's, before any parser
        return manager_message_adapter.validate_json(raw)
    except ValidationError as exc:
        raise UnreadableFrame(_first_error(exc)) from None
    except (ValueError, RecursionError) as exc:
        raise UnreadableFrame(f"{type(exc).__name__}: {exc}"[:300]) from None


def _first_error(exc: ValidationError) -> str:
    err = exc.errors()[0]
    where = ".".join(str(p) for p in err["loc"])
    more = exc.error_count() - 1
    return ((f"{where}: " if where else "") + err["msg"]
            + (f" (and {more} more)" if more else ""))


# --------------------------------------------------------------------------- the machine


class DelegateConnection:
    """Protocol state of one delegate; see the module docstring for the states."""

    def __init__(self, *, send_task_messages: bool = True) -> None:
        self.state = State.CONNECTING
        # False when task messages travel over the HTTP log service: the manager's acks
        # on registration then only confirm, they do not trigger a resend here.
        self.send_task_messages = send_task_messages
        self.draining = False
        self.delegate_id: str | None = None
        self.heartbeat_interval = 10.0
        self.last_heartbeat_ack: float | None = None
        self._error_resends: dict[str, int] = {}

    def _enter(self, new: State) -> None:
        if new is not self.state and new not in _ALLOWED[self.state]:
            raise ConnectionStateError(f"connection cannot go from {self.state} to {new}")
        self.state = new

    @property
    def registered(self) -> bool:
        return self.state in (State.OPEN, State.DRAINING)

    # ------------------------------------------------------------------ the socket's life

    def connected(self, register: Register) -> list[Action]:
        """A socket is open: send ``register`` (its ``draining`` is ours)."""
        self._enter(State.REGISTERING)
        self._error_resends.clear()
        return [Send(register.model_copy(update={"draining": self.draining}))]

    def lost(self) -> None:
        """The socket closed or broke; a new one starts at CONNECTING."""
        if self.state is not State.CLOSED:
            self._enter(State.CONNECTING)

    def stop(self) -> None:
        """Stop for good (the delegate is exiting)."""
        self._enter(State.CLOSED)

    # ------------------------------------------------------------------ from the manager

    def receive(self, msg: ManagerMessage, *, now: float, free_slots: int) -> list[Action]:
        """What to do about one message; ``now`` is a monotonic clock reading."""
        if self.state is State.REGISTERING:
            return self._answer_to_register(msg, now, free_slots)
        if not self.registered:
            log.info("message outside a session ignored", type=msg.type, state=self.state)
            return []
        return self._in_session(msg, now)

    def unreadable(self, error: UnreadableFrame, size: int) -> list[Action]:
        """A frame that did not parse. In a session the manager may be newer than us:
        skip it. As the answer to ``register`` it leaves us unregistered: try again."""
        if self.state is State.REGISTERING:
            return self._close(f"unreadable answer to register: {error}", fatal=False)
        log.warning("unreadable message from manager; ignored", error=str(error), size=size)
        return []

    def _answer_to_register(self, msg: ManagerMessage, now: float,
                            free_slots: int) -> list[Action]:
        if isinstance(msg, Refused):
            return self._close(f"manager refused this delegate: {msg.reason}"
                               if msg.fatal else msg.reason, fatal=msg.fatal)
        if not isinstance(msg, Registered):
            return self._close(f"expected 'registered', got {msg.type!r}", fatal=False)
        self._enter(State.DRAINING if self.draining else State.OPEN)
        self.delegate_id = msg.delegate_id
        self.heartbeat_interval = msg.heartbeat_interval
        self.last_heartbeat_ack = now
        actions: list[Action] = []
        for task_id, reason in msg.cancel.items():
            log.warning("manager no longer expects this task; stopping it", task_id=task_id,
                        reason=reason)
            actions += [AbortTask(task_id, reason, report=False), DropTask(task_id)]
        if self.send_task_messages:
            actions.append(RewindOutbox(dict(msg.acked)))
        else:
            actions += [AckTask(task_id, seq) for task_id, seq in msg.acked.items()]
        actions.append(Send(Draining()) if self.draining else Send(Pull(free_slots=free_slots)))
        return actions

    def _in_session(self, msg: ManagerMessage, now: float) -> list[Action]:
        if isinstance(msg, Ack):
            self._error_resends.pop(msg.task_id, None)
            return [AckTask(msg.task_id, msg.seq)]
        if isinstance(msg, Assign):
            return [StartTask(msg.task)]
        if isinstance(msg, Abort):
            return [AbortTask(msg.task_id, msg.reason)]
        if isinstance(msg, HeartbeatAck):
            self.last_heartbeat_ack = now
            return []
        if isinstance(msg, Resend):
            log.info("manager asked for messages again", task_id=msg.task_id,
                     after_seq=msg.after_seq)
            return [RewindTask(msg.task_id, msg.after_seq)]
        if isinstance(msg, Error):
            return self._error(msg)
        if isinstance(msg, Disconnect):
            return self._close(f"manager disconnected this delegate: {msg.reason}"
                               if msg.fatal else msg.reason, fatal=msg.fatal)
        log.info("ignored message", type=msg.type)
        return []

    def _error(self, msg: Error) -> list[Action]:
        """An ``error`` about one task's message: the manager could not use it (today it
        says so, "send it again", when storing failed). Send that task's unacked
        messages again, a few times at most without progress."""
        log.warning("manager reported an error", reason=msg.reason, task_id=msg.task_id)
        if msg.task_id is None:
            return []
        tries = self._error_resends.get(msg.task_id, 0)
        if tries >= MAX_ERROR_RESENDS:
            return []
        self._error_resends[msg.task_id] = tries + 1
        return [RewindTask(msg.task_id, None)]

    def _close(self, reason: str, *, fatal: bool) -> list[Action]:
        self._enter(State.CLOSED if fatal else State.CONNECTING)
        return [Close(reason, fatal=fatal)]

    # ------------------------------------------------------------------ from this side

    def task_started(self, spec: TaskSpec, refusal: str | None) -> list[Action]:
        """The runner started ``spec`` (``refusal is None``) or said why not."""
        if refusal is None:
            log.info("task started", task_id=spec.task_id, type=spec.type)
            return [Send(Accept(task_id=spec.task_id))]
        return [Send(Reject(task_id=spec.task_id, reason=refusal))]

    def pull(self, free_slots: int) -> list[Action]:
        """Ask for work (after a task finished), if there is a session to ask in."""
        if self.state is not State.OPEN:
            return []
        return [Send(Pull(free_slots=free_slots))]

    def drain(self) -> list[Action]:
        """Stop taking work; tell the manager now if connected, else on registration."""
        self.draining = True
        if self.state is State.OPEN:
            self._enter(State.DRAINING)
            return [Send(Draining())]
        return []

    def heartbeat(self, running: list[str], sent_at: datetime) -> list[Action]:
        if not self.registered:
            return []
        return [Send(Heartbeat(running_tasks=running, sent_at=sent_at))]

    def readiness(self, now: float) -> tuple[bool, str]:
        """Ready: registered, not draining, a heartbeat answered within two intervals."""
        if self.draining:
            return False, "draining"
        if not self.registered or self.last_heartbeat_ack is None:
            return False, "not connected to the manager"
        if now - self.last_heartbeat_ack > 2 * self.heartbeat_interval + 1:
            return False, "manager has not answered a heartbeat in two intervals"
        return True, "ready"
