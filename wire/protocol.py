"""The wire protocol between a delegate and a manager: one JSON message per websocket frame.

These pydantic models are the single source of truth: the manager imports them, and
``docs/protocol.md`` carries the JSON Schema generated from them (``delegate protocol
schema``). Guarantees (see docs/protocol.md):

* auth: the delegate proves it holds its token with a short-lived signed JWT
  (:mod:`wire.auth`); the token itself never travels;
* pull: the delegate says how many free slots it has; the manager assigns a task to
  exactly one delegate and persists that before sending ``assign``;
* per-task sequencing: every message a task produces carries ``seq`` (1, 2, ...); the
  manager acks cumulatively and drops duplicates; the delegate resends what is unacked
  after a reconnect;
* leases: heartbeats renew the leases of running tasks.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

PROTOCOL_VERSION = 1
SUPPORTED_PROTOCOL_VERSIONS = (1,)

# A frame larger than this is refused by both sides (websockets enforces it on receive).
MAX_MESSAGE_BYTES = 1 << 20


class _Msg(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# --------------------------------------------------------------------------- enums


class TaskStatus(StrEnum):
    QUEUED = "QUEUED"
    ASSIGNED = "ASSIGNED"  # persisted, sent, not yet accepted by the delegate
    RUNNING = "RUNNING"
    SUCCESS = "SUCCESS"
    FAILED = "FAILED"
    ABORTED = "ABORTED"
    TIMED_OUT = "TIMED_OUT"
    LOST = "LOST"

    @property
    def finished(self) -> bool:
        return self in FINISHED_STATUSES


FINISHED_STATUSES = frozenset(
    {TaskStatus.SUCCESS, TaskStatus.FAILED, TaskStatus.ABORTED, TaskStatus.TIMED_OUT,
     TaskStatus.LOST}
)


class UnitStatus(StrEnum):
    RUNNING = "RUNNING"
    SUCCESS = "SUCCESS"
    FAILURE = "FAILURE"
    SKIPPED = "SKIPPED"


class LogLevel(StrEnum):
    INFO = "INFO"
    WARN = "WARN"
    ERROR = "ERROR"


class DelegateState(StrEnum):
    CONNECTED = "connected"
    DRAINING = "draining"
    DISCONNECTED = "disconnected"


# --------------------------------------------------------------------------- task spec


# A key of ``TaskSpec.context``: params an execution offers every step (its region,
# cluster and credentials). The delegate fills each into the params of a task type whose
# model declares that field, when the params do not set it; other types never see them.
PARAM_DEFAULTS = "paramDefaults"


class TaskSpec(_Msg):
    """What a delegate needs to run one task. Secrets travel only in ``assign``."""

    task_id: str
    type: str
    params: dict[str, Any] = Field(default_factory=dict)
    secrets: dict[str, str] = Field(default_factory=dict)
    # Expression context the delegate uses to render manifests it fetches
    # (<+primary.artifact.image>, <+env.name>, ...). Resolved server-side otherwise.
    context: dict[str, Any] = Field(default_factory=dict)
    timeout: float = Field(default=3600.0, description="seconds")
    # Where the task's messages go: the websocket (default) or the HTTP log service.
    execution_id: str | None = None
    step_id: str | None = None


# --------------------------------------------------------------------------- task messages


class LogLine(_Msg):
    ts: datetime
    level: LogLevel = LogLevel.INFO
    text: str


class LogPayload(_Msg):
    kind: Literal["log"] = "log"
    unit: str
    lines: list[LogLine]


class UnitPayload(_Msg):
    kind: Literal["unit"] = "unit"
    unit: str
    status: UnitStatus
    started_at: datetime | None = None
    ended_at: datetime | None = None


class EventPayload(_Msg):
    """An AWS service event, kept apart from the log so a UI can show them as such."""

    kind: Literal["event"] = "event"
    unit: str
    source: str  # e.g. "ecs:service/cluster/name"
    event_id: str
    created_at: datetime
    message: str


class ResultPayload(_Msg):
    kind: Literal["result"] = "result"
    status: TaskStatus
    output: dict[str, Any] = Field(default_factory=dict)
    error: str | None = None


TaskPayload = Annotated[
    LogPayload | UnitPayload | EventPayload | ResultPayload, Field(discriminator="kind")
]


class TaskMessage(_Msg):
    """One sequenced message of a task. ``seq`` starts at 1 and has no gaps."""

    type: Literal["task_msg"] = "task_msg"
    task_id: str
    seq: int = Field(ge=1)
    payload: TaskPayload


# --------------------------------------------------------------------------- delegate -> manager


class Register(_Msg):
    type: Literal["register"] = "register"
    auth: str = Field(description="a short-lived JWT signed with the token-derived key")
    protocol_versions: list[int]
    account_id: str
    name: str
    tags: list[str]
    version: str
    hostname: str
    instance_id: str = Field(description="new for every process start")
    capacity: int = Field(ge=0)
    task_types: list[str]
    running_tasks: list[str] = Field(default_factory=list)
    draining: bool = False


class Heartbeat(_Msg):
    type: Literal["heartbeat"] = "heartbeat"
    running_tasks: list[str]
    sent_at: datetime


class Pull(_Msg):
    """Ask for up to ``free_slots`` tasks. Replaces any earlier pull (not additive)."""

    type: Literal["pull"] = "pull"
    free_slots: int = Field(ge=0)


class Accept(_Msg):
    """The delegate has started the assigned task (the manager marks it RUNNING)."""

    type: Literal["accept"] = "accept"
    task_id: str


class Reject(_Msg):
    """The delegate cannot run an assigned task (no free slot, unknown type...)."""

    type: Literal["reject"] = "reject"
    task_id: str
    reason: str


class Draining(_Msg):
    type: Literal["draining"] = "draining"
    reason: str = "delegate stopping"


DelegateMessage = Annotated[
    Register | Heartbeat | Pull | Accept | Reject | Draining | TaskMessage,
    Field(discriminator="type"),
]
delegate_message_adapter: TypeAdapter[DelegateMessage] = TypeAdapter(DelegateMessage)


# --------------------------------------------------------------------------- manager -> delegate


class Registered(_Msg):
    type: Literal["registered"] = "registered"
    protocol_version: int
    delegate_id: str
    heartbeat_interval: float
    lease_ttl: float
    # For every task the delegate said it runs: the last seq the manager holds, so the
    # delegate resends from the next one. Tasks the manager considers finished or lost
    # are listed in ``cancel``: the delegate stops them.
    acked: dict[str, int] = Field(default_factory=dict)
    cancel: dict[str, str] = Field(default_factory=dict)


class Refused(_Msg):
    """Registration refused; the connection closes after it. ``fatal``: do not retry."""

    type: Literal["refused"] = "refused"
    reason: str
    fatal: bool = True


class Assign(_Msg):
    type: Literal["assign"] = "assign"
    task: TaskSpec


class Ack(_Msg):
    """Cumulative: the manager holds every message of ``task_id`` up to ``seq``."""

    type: Literal["ack"] = "ack"
    task_id: str
    seq: int


class Resend(_Msg):
    """The manager could not keep the messages of ``task_id`` after ``after_seq`` (a
    transient fault on its side): the delegate resends them on this connection at once,
    without waiting for a reconnect."""

    type: Literal["resend"] = "resend"
    task_id: str
    after_seq: int


class Abort(_Msg):
    type: Literal["abort"] = "abort"
    task_id: str
    reason: str = "aborted by user"


class HeartbeatAck(_Msg):
    type: Literal["heartbeat_ack"] = "heartbeat_ack"
    received_at: datetime


class Error(_Msg):
    """The manager could not use a message; the connection stays up."""

    type: Literal["error"] = "error"
    reason: str
    task_id: str | None = None


class Disconnect(_Msg):
    """The manager ends the session (token revoked, replaced by a newer session...)."""

    type: Literal["disconnect"] = "disconnect"
    reason: str
    fatal: bool = False


ManagerMessage = Annotated[
    Registered | Refused | Assign | Ack | Resend | Abort | HeartbeatAck | Error | Disconnect,
    Field(discriminator="type"),
]
manager_message_adapter: TypeAdapter[ManagerMessage] = TypeAdapter(ManagerMessage)


# Close codes (4000-4999 are application codes in RFC 6455).
CLOSE_AUTH_FAILED = 4401
CLOSE_REVOKED = 4403
CLOSE_REPLACED = 4409
CLOSE_PROTOCOL = 4400


def dump(msg: BaseModel) -> str:
    return msg.model_dump_json(exclude_none=False)


def json_schemas() -> dict[str, Any]:
    """JSON Schema of both directions, for docs/protocol.md."""
    return {
        "delegate_to_manager": delegate_message_adapter.json_schema(),
        "manager_to_delegate": manager_message_adapter.json_schema(),
    }
