"""The delegate side of the manager: the live sessions, and what each frame does.

Everything here runs on the event loop and is synchronous: a frame comes in, the hub
decides and writes to the database in one short transaction, and what it sends goes out
after the commit. Dispatch happens on submit, on pull and on register (and, as a safety
net for a lost wake-up, on each watchdog pass).

Several replicas may serve one database: each holds the websockets of its own delegates
(``sessions``); everything else is in the database. What one replica must tell another
— a task was queued, a frame for a delegate it holds, a session to close — goes over the
:class:`~manager.bus.Bus`.
The concerns live in their own modules: :mod:`manager.registration` (who a delegate is,
what it may resume), :mod:`manager.dispatch` (which task goes where), and
:mod:`manager.leases` (when the manager stops waiting)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import structlog
from pydantic import BaseModel

from manager import waiting
from manager.bus import Bus
from manager.db import Database, now
from manager.dispatch import Dispatcher, waiting_reason
from manager.frames import parse
from manager.keys import SecretBox
from manager.leases import Leases
from manager.registration import Refusal, Registrar
from manager.replicas import Replicas
from manager.sessions import Session
from manager.settings import Settings
from manager.task_states import TaskEvent
from manager.taskstore import FINISHED, NewTask, TaskStore
from wire.protocol import (
    CLOSE_REPLACED,
    CLOSE_REVOKED,
    Abort,
    Accept,
    Ack,
    DelegateState,
    Disconnect,
    Draining,
    Error,
    Heartbeat,
    HeartbeatAck,
    Pull,
    Register,
    Registered,
    Reject,
    Resend,
    TaskMessage,
    TaskStatus,
)

__all__ = ["Hub", "Refusal"]

log = structlog.get_logger("manager.hub")


class Hub:
    def __init__(self, settings: Settings, db: Database, box: SecretBox,
                 store: TaskStore, bus: Bus) -> None:
        self.settings = settings
        self.db = db
        self.store = store
        self.bus = bus
        self.replicas = Replicas(db, bus.replica_id, settings.replica_ttl)
        self.registrar = Registrar(db, box, store)
        self.dispatcher = Dispatcher(db, store)
        self.leases = Leases(settings, db, store)
        self.sessions: dict[str, Session] = {}  # session_id -> session (this replica's)
        _subscribe(self, bus)

    @property
    def last_seen(self) -> dict[str, float]:
        return self.leases.last_seen

    def check_credential(self, credential: str, *, audience: str) -> tuple[Any, dict[str, Any]]:
        return self.registrar.check_credential(credential, audience=audience)

    # ------------------------------------------------------------------ start-up

    def requeue(self, task_id: str, reason: str | None = None) -> bool:
        """Back to the queue (call :meth:`queued` after, to wake the replicas)."""
        return self.store.try_apply(
            task_id, TaskEvent.REQUEUE, delegate_id=None, instance_id=None, session_id=None,
            assigned_at=None, waiting_reason=reason) is not None

    # ------------------------------------------------------------------ sessions

    def register(self, reg: Register, ws: Any) -> Session:
        session, version = self.registrar.admit(reg, ws)
        session.defer = self.db.after_commit
        with self.db.tx():
            self.registrar.store_delegate(session, reg, self.bus.replica_id)
            resumed = self.registrar.resume(session, reg.running_tasks)
            # Assigned over an earlier session (perhaps on a replica that died) and not
            # among what the delegate runs: the frame never reached it.
            requeued = [t for t in self.registrar.unreceived(session) if self.requeue(t)]
            for task_id in resumed.lost:
                self.store.finish(task_id, TaskStatus.LOST, error=(
                    f"delegate {reg.name} reconnected without this task; it is presumed "
                    "lost"))
            self.replace(session.delegate_id, session.session_id)
            self.bus.publish("replaced", f"{session.delegate_id} {session.session_id}",
                             here=False)
            self.sessions[session.session_id] = session
            self.last_seen[session.delegate_id] = now()
            session.send(Registered(
                protocol_version=version, delegate_id=session.delegate_id,
                heartbeat_interval=self.settings.heartbeat_interval,
                lease_ttl=self.settings.lease_ttl, acked=resumed.acked,
                cancel=resumed.cancel))
            for task_id in resumed.acked:
                row = self.store.get(task_id)
                if row is not None and row["abort_reason"]:
                    session.send(Abort(task_id=task_id, reason=row["abort_reason"]))
        log.info("delegate registered", delegate=reg.name, account=reg.account_id,
                 instance=reg.instance_id, tags=sorted(reg.tags), resumed=len(resumed.acked))
        self.refresh_waiting_reasons()
        if requeued:
            self.queued()
        self.dispatch()
        return session

    def replace(self, delegate_id: str, session_id: str) -> None:
        """Close this replica's other sessions of the delegate instance (it came back on
        ``session_id``, here or on another replica)."""
        for other in list(self.sessions.values()):
            if other.delegate_id == delegate_id and other.session_id != session_id:
                other.send(Disconnect(reason="replaced by a newer session of the same "
                                             "delegate instance"))
                other.close(CLOSE_REPLACED, "replaced")
                self.detach(other, replaced=True)

    def detach(self, session: Session, *, replaced: bool = False) -> None:
        """The session is gone: unaccepted assignments go back to the queue; running
        tasks keep their lease until it runs out."""
        if self.sessions.pop(session.session_id, None) is None:
            return
        session.closed = True
        with self.db.tx():
            requeued = [r["task_id"] for r in self.db.all(
                "SELECT task_id FROM tasks WHERE status = 'ASSIGNED' AND session_id = ? "
                "ORDER BY task_id", session.session_id) if self.requeue(r["task_id"])]
            # Only if the row is still this session's: the delegate may be back already,
            # on this replica or another.
            self.db.run("UPDATE delegates SET state = ?, session_id = NULL, replica_id = NULL "
                        "WHERE delegate_id = ? AND session_id = ?",
                        DelegateState.DISCONNECTED.value, session.delegate_id,
                        session.session_id)
        log.info("delegate session closed", delegate=session.name, requeued=len(requeued),
                 replaced=replaced)
        self.refresh_waiting_reasons()
        if requeued:
            self.queued()

    def session_of(self, delegate_id: str | None) -> Session | None:
        for s in self.sessions.values():
            if s.delegate_id == delegate_id and not s.closed:
                return s
        return None

    # ------------------------------------------------------------------ frames

    def handle_frame(self, session: Session, text: str) -> None:
        """One frame from a delegate. Never raises: a bad frame gets an ``Error``, a
        task message the manager could not store gets a ``Resend``."""
        t = now()
        session.last_frame = t
        self.last_seen[session.delegate_id] = t
        msg = parse(text)
        if isinstance(msg, Error):
            session.send(msg)
            return
        try:
            self._handle(session, msg)
        except Exception as exc:
            log.exception("error handling a delegate message", kind=msg.type,
                          delegate=session.name)
            if isinstance(msg, TaskMessage):
                self._ask_resend(session, msg.task_id)
            else:
                session.send(Error(reason=f"the manager failed to handle this {msg.type} "
                                          f"message ({type(exc).__name__})",
                                   task_id=getattr(msg, "task_id", None)))

    def _ask_resend(self, session: Session, task_id: str) -> None:
        """Nothing of the failed message was kept (its transaction rolled back): ask
        for everything after what the manager holds, on this connection."""
        try:
            row = self.store.get(task_id)
        except Exception:
            log.exception("cannot read a task to ask for a resend", task=task_id)
            return
        if row is not None:
            session.send(Resend(task_id=task_id, after_seq=int(row["last_seq"])))

    def _handle(self, session: Session, msg: Any) -> None:
        if isinstance(msg, TaskMessage):
            self._task_message(session, msg)
        elif isinstance(msg, Pull):
            session.credit = msg.free_slots
            self.dispatch()
        elif isinstance(msg, Accept):
            self._accept(session, msg.task_id)
        elif isinstance(msg, Reject):
            self._reject(session, msg.task_id, msg.reason)
        elif isinstance(msg, Heartbeat):
            t = now()
            self.db.run("UPDATE delegates SET last_heartbeat = ? WHERE delegate_id = ?",
                        t, session.delegate_id)
            session.send(HeartbeatAck(received_at=datetime.fromtimestamp(t, UTC)))
        elif isinstance(msg, Draining):
            session.draining = True
            session.credit = 0
            self.db.run("UPDATE delegates SET state = ? WHERE delegate_id = ? AND "
                        "session_id = ?", DelegateState.DRAINING.value, session.delegate_id,
                        session.session_id)
            self.refresh_waiting_reasons()
        elif isinstance(msg, Register):
            session.send(Error(reason="already registered on this connection"))

    def _owned(self, session: Session, task_id: str) -> Any:
        """The task's row if this session's delegate owns it; else tell it so."""
        row = self.store.get(task_id)
        if row is None or row["delegate_id"] != session.delegate_id:
            if row is not None:
                log.warning("message for another delegate's task refused", task=task_id,
                            delegate=session.name, account=session.account_id)
            session.send(Error(reason=f"task {task_id} is not assigned to this delegate",
                               task_id=task_id))
            return None
        return row

    def _accept(self, session: Session, task_id: str) -> None:
        row = self._owned(session, task_id)
        if row is None:
            return
        if row["status"] == TaskStatus.ASSIGNED:
            self.store.apply(task_id, TaskEvent.START, started_at=now(),
                             session_id=session.session_id)
            self.store.changed(task_id)
        elif row["status"] in FINISHED and row["status"] != TaskStatus.LOST:
            session.send(Abort(task_id=task_id, reason=f"task already {row['status']}"))

    def _reject(self, session: Session, task_id: str, reason: str) -> None:
        row = self._owned(session, task_id)
        if row is None or row["status"] != TaskStatus.ASSIGNED:
            return
        self.requeue(task_id, f"rejected by delegate {session.name}: {reason}")
        self.queued()

    def _task_message(self, session: Session, msg: TaskMessage) -> None:
        with self.db.tx():
            row = self._owned(session, msg.task_id)
            if row is None:
                return
            if row["status"] == TaskStatus.ASSIGNED:
                self._accept(session, msg.task_id)
            ack = self.store.store(msg.task_id, msg.seq, msg.payload)
            session.send(Ack(task_id=msg.task_id, seq=ack))

    # ------------------------------------------------------------------ dispatch

    def dispatch(self) -> None:
        """Assign queued tasks, oldest first, to this replica's sessions with credit."""
        self.dispatcher.dispatch(self.sessions)

    def queued(self) -> None:
        """Tasks became QUEUED: dispatch here, and wake the other replicas to do so."""
        self.bus.publish("dispatch", here=False)
        self.dispatch()

    def waiting_reason(self, account_id: str | None, task_type: str,
                       selectors: set[str]) -> str:
        return waiting_reason(self.replicas.connected(), account_id, task_type, selectors)

    def refresh_waiting_reasons(self, task_ids: list[str] | None = None) -> None:
        waiting.refresh(self.db, self.replicas.connected(), task_ids)

    def send_to(self, delegate_id: str | None, msg: BaseModel) -> None:
        """Send to the delegate's live session, on this replica or another one."""
        session = self.session_of(delegate_id)
        if session is not None:
            session.send(msg)
        elif delegate_id is not None:
            self.bus.publish("send", f"{delegate_id} {msg.model_dump_json()}", here=False)

    # ------------------------------------------------------------------ API actions

    def submit(self, spec: NewTask) -> str:
        with self.db.tx():
            task_id = self.store.create(spec)
            self.queued()
            # Assigned at once (the common case): no reason to store. Else say why.
            if self.db.one("SELECT 1 FROM tasks WHERE task_id = ? AND status = 'QUEUED'",
                           task_id) is not None:
                self.refresh_waiting_reasons([task_id])
        return task_id

    def abort(self, task_id: str, reason: str) -> Any:
        row = self.store.get(task_id)
        if row is None or row["status"] in FINISHED:
            return row
        with self.db.tx():
            if row["status"] == TaskStatus.QUEUED:
                self.store.finish(task_id, TaskStatus.ABORTED, error=reason)
                return self.store.get(task_id)
            self.db.run("UPDATE tasks SET abort_reason = ? WHERE task_id = ?", reason,
                        task_id)
            if row["status"] == TaskStatus.ASSIGNED:
                # Not accepted yet: it never started, so it ends now; tell the delegate.
                self.store.finish(task_id, TaskStatus.ABORTED, error=reason)
            self.send_to(row["delegate_id"], Abort(task_id=task_id, reason=reason))
        return self.store.get(task_id)

    def revoke(self, token_id: str) -> bool:
        changed = self.db.run("UPDATE tokens SET revoked_at = ? WHERE token_id = ? AND "
                              "revoked_at IS NULL", now(), token_id)
        self.bus.publish("revoke", token_id, here=False)
        self.close_token(token_id)
        return changed > 0

    def close_token(self, token_id: str) -> None:
        for session in list(self.sessions.values()):
            if session.token_id == token_id:
                session.send(Disconnect(reason=f"token {token_id} was revoked", fatal=True))
                session.close(CLOSE_REVOKED, "token revoked")
                self.detach(session)

def _subscribe(hub: Hub, bus: Bus) -> None:
    """What the other replicas' messages do here."""
    loop_wake = _Coalesced(hub.dispatch)
    bus.on("dispatch", lambda _arg: loop_wake())
    bus.on_connect.append(loop_wake)  # catch up on what was announced while away
    bus.on("revoke", hub.close_token)

    def replaced(arg: str) -> None:
        delegate_id, _, session_id = arg.partition(" ")
        hub.replace(delegate_id, session_id)

    def send(arg: str) -> None:
        delegate_id, _, frame = arg.partition(" ")
        session = hub.session_of(delegate_id)
        if session is not None:
            session.send_text(frame)

    bus.on("replaced", replaced)
    bus.on("send", send)


class _Coalesced:
    """Call ``fn`` once on the next loop turn however many wake-ups came meanwhile (a
    burst of submits on other replicas is one dispatch here)."""

    def __init__(self, fn: Callable[[], None]) -> None:
        self.fn = fn
        self.pending = False

    def __call__(self) -> None:
        if self.pending:
            return
        self.pending = True
        try:
            asyncio.get_running_loop().call_soon(self._run)
        except RuntimeError:  # no loop (a synchronous caller): now
            self._run()

    def _run(self) -> None:
        self.pending = False
        try:
            self.fn()
        except Exception:
            log.exception("dispatch after a wake-up failed")
