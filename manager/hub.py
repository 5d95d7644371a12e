"""The delegate side of the manager: registration, sessions, the dispatcher, leases.

Everything here runs on the event loop and is synchronous: a frame comes in, the hub
decides and writes to SQLite in a short transaction, and queues what to send on the
sessions involved. Dispatch happens on submit, on pull and on register — never on a
timer. Only leases, timeouts and retention are checked by the watchdog."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import structlog
from pydantic import ValidationError

from manager.db import Database, dumps, loads, now
from manager.keys import SecretBox
from manager.naming import new_id
from manager.sessions import Session
from manager.settings import Settings
from manager.taskstore import FINISHED, NewTask, TaskStore
from wire import auth
from wire.protocol import (
    CLOSE_REPLACED,
    CLOSE_REVOKED,
    MAX_MESSAGE_BYTES,
    SUPPORTED_PROTOCOL_VERSIONS,
    Abort,
    Accept,
    Ack,
    Assign,
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
    TaskMessage,
    TaskSpec,
    TaskStatus,
    delegate_message_adapter,
)

log = structlog.get_logger("manager.hub")

_DELEGATE_TYPES = ("register", "heartbeat", "pull", "accept", "reject", "draining", "task_msg")


class Refusal(Exception):
    """Registration refused; ``str(exc)`` is sent to the delegate as is."""


class Hub:
    def __init__(self, settings: Settings, db: Database, box: SecretBox,
                 store: TaskStore) -> None:
        self.settings = settings
        self.db = db
        self.box = box
        self.store = store
        self.sessions: dict[str, Session] = {}  # session_id -> session
        self.replay = auth.ReplayGuard()
        self.started_at = now()
        # Last time anything came from a delegate instance: leases run from here.
        self.last_seen: dict[str, float] = {}

    # ------------------------------------------------------------------ start-up

    def recover(self) -> None:
        """After a (re)start no session exists: unaccepted assignments go back to the
        queue, running tasks keep a full lease for their delegate to reconnect."""
        with self.db.tx():
            self.db.run("UPDATE tasks SET status = 'QUEUED', delegate_id = NULL, "
                        "instance_id = NULL, session_id = NULL WHERE status = 'ASSIGNED'")
            self.db.run("UPDATE delegates SET state = ? WHERE state != ?",
                        DelegateState.DISCONNECTED.value, DelegateState.DISCONNECTED.value)
        self.refresh_waiting_reasons()

    # ------------------------------------------------------------------ credentials

    def check_credential(self, credential: str, *, audience: str) -> tuple[Any, dict[str, Any]]:
        """Verify a delegate JWT; return (token row, claims). Raises Refusal."""
        try:
            kid = auth.unverified_kid(credential)
        except auth.AuthError as exc:
            raise Refusal(str(exc)) from None
        row = self.db.one("SELECT * FROM tokens WHERE token_id = ?", kid)
        if row is None:
            raise Refusal(f"unknown token (id {kid}): create one with "
                          "'delegate manager token create --account ID'")
        if row["revoked_at"] is not None:
            raise Refusal(f"token revoked (id {kid})")
        key = bytes.fromhex(self.box.open(row["key_sealed"]))
        try:
            claims = auth.verify(credential, key, audience=audience)
        except auth.AuthError as exc:
            raise Refusal(str(exc)) from None
        if claims["iss"] != row["account_id"]:
            raise Refusal(f"account mismatch: token is for account {row['account_id']}")
        try:
            self.replay.check(str(claims["jti"]), float(claims["exp"]))
        except auth.AuthError as exc:
            raise Refusal(str(exc)) from None
        return row, claims

    # ------------------------------------------------------------------ registration

    def register(self, reg: Register, ws: Any) -> Session:
        token, claims = self.check_credential(reg.auth, audience="delegate")
        if reg.account_id != token["account_id"]:
            raise Refusal(f"account mismatch: token is for account {token['account_id']}, "
                          f"the delegate says {reg.account_id}")
        if claims["sub"] != reg.name:
            raise Refusal(f"name mismatch: the credential is signed for delegate "
                          f"{claims['sub']!r}, the registration says {reg.name!r}")
        common = set(reg.protocol_versions) & set(SUPPORTED_PROTOCOL_VERSIONS)
        if not common:
            raise Refusal(f"no common protocol version: the delegate speaks "
                          f"{sorted(reg.protocol_versions)}, this manager speaks "
                          f"{list(SUPPORTED_PROTOCOL_VERSIONS)}; upgrade one of them")
        t = now()
        state = DelegateState.DRAINING if reg.draining else DelegateState.CONNECTED
        existing = self.db.one("SELECT delegate_id FROM delegates WHERE account_id = ? AND "
                               "name = ? AND instance_id = ?",
                               reg.account_id, reg.name, reg.instance_id)
        delegate_id = existing["delegate_id"] if existing else new_id("dlg")
        session = Session(
            session_id=new_id("ses"), delegate_id=delegate_id, account_id=reg.account_id,
            name=reg.name, instance_id=reg.instance_id, token_id=token["token_id"],
            tags=frozenset(reg.tags), task_types=frozenset(reg.task_types),
            capacity=reg.capacity, ws=ws, draining=reg.draining)
        acked: dict[str, int] = {}
        cancel: dict[str, str] = {}
        lost: list[str] = []
        with self.db.tx():
            self.db.run(
                "INSERT INTO delegates (delegate_id, account_id, name, instance_id, token_id, "
                "tags, version, hostname, capacity, task_types, state, connected_at, "
                "last_heartbeat) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?) "
                "ON CONFLICT (delegate_id) DO UPDATE SET tags = excluded.tags, "
                "version = excluded.version, hostname = excluded.hostname, "
                "capacity = excluded.capacity, task_types = excluded.task_types, "
                "state = excluded.state, connected_at = excluded.connected_at, "
                "last_heartbeat = excluded.last_heartbeat, token_id = excluded.token_id",
                delegate_id, reg.account_id, reg.name, reg.instance_id, token["token_id"],
                dumps(sorted(reg.tags)), reg.version, reg.hostname, reg.capacity,
                dumps(sorted(reg.task_types)), state.value, t, t)
            for task_id in reg.running_tasks:
                row = self.store.get(task_id)
                if row is None:
                    cancel[task_id] = "unknown task: the manager has no record of it"
                elif row["instance_id"] != reg.instance_id:
                    cancel[task_id] = "this task is not assigned to this delegate"
                elif row["status"] in FINISHED:
                    cancel[task_id] = f"task already finished ({row['status']})"
                elif row["status"] in (TaskStatus.RUNNING, TaskStatus.ASSIGNED):
                    # ASSIGNED: the delegate started it but its accept never arrived.
                    self.db.run("UPDATE tasks SET status = 'RUNNING', session_id = ?, "
                                "started_at = COALESCE(started_at, ?) WHERE task_id = ?",
                                session.session_id, t, task_id)
                    acked[task_id] = int(row["last_seq"])
                else:
                    cancel[task_id] = f"task is {row['status']} on the manager"
            for row in self.db.all("SELECT task_id FROM tasks WHERE status = 'RUNNING' AND "
                                   "instance_id = ?", reg.instance_id):
                if row["task_id"] not in acked:
                    lost.append(row["task_id"])
        for task_id in lost:
            self.store.finish(task_id, TaskStatus.LOST, error=(
                f"delegate {reg.name} reconnected without this task; it is presumed lost"))
        for other in list(self.sessions.values()):
            if other.instance_id == reg.instance_id and other.account_id == reg.account_id:
                other.send(Disconnect(reason="replaced by a newer session of the same "
                                             "delegate instance"))
                other.close(CLOSE_REPLACED, "replaced")
                self.detach(other, replaced=True)
        self.sessions[session.session_id] = session
        self.last_seen[reg.instance_id] = t
        session.send(Registered(
            protocol_version=max(common), delegate_id=delegate_id,
            heartbeat_interval=self.settings.heartbeat_interval,
            lease_ttl=self.settings.lease_ttl, acked=acked, cancel=cancel))
        for task_id in acked:
            row = self.store.get(task_id)
            if row is not None and row["abort_reason"]:
                session.send(Abort(task_id=task_id, reason=row["abort_reason"]))
        log.info("delegate registered", delegate=reg.name, account=reg.account_id,
                 instance=reg.instance_id, tags=sorted(reg.tags), resumed=len(acked))
        self.refresh_waiting_reasons()
        self.dispatch()
        return session

    def detach(self, session: Session, *, replaced: bool = False) -> None:
        """The session is gone: unaccepted assignments go back to the queue; running
        tasks keep their lease until it runs out."""
        if self.sessions.pop(session.session_id, None) is None:
            return
        session.closed = True
        with self.db.tx():
            requeued = self.db.run(
                "UPDATE tasks SET status = 'QUEUED', delegate_id = NULL, instance_id = NULL, "
                "session_id = NULL, assigned_at = NULL WHERE status = 'ASSIGNED' AND "
                "session_id = ?", session.session_id)
            if not replaced:
                self.db.run("UPDATE delegates SET state = ? WHERE delegate_id = ?",
                            DelegateState.DISCONNECTED.value, session.delegate_id)
        log.info("delegate session closed", delegate=session.name, requeued=requeued)
        self.refresh_waiting_reasons()
        self.dispatch()

    # ------------------------------------------------------------------ frames

    def handle_frame(self, session: Session, text: str) -> None:
        """One frame from a delegate. Never raises: a bad frame gets an ``Error``."""
        self.last_seen[session.instance_id] = now()
        size = len(text.encode())
        if size > MAX_MESSAGE_BYTES:
            session.send(Error(reason=f"message of {size} bytes is over the limit of "
                                      f"{MAX_MESSAGE_BYTES} bytes; it was not stored"))
            return
        try:
            data = json.loads(text)
        except ValueError as exc:
            session.send(Error(reason=f"message is not JSON: {exc}"))
            return
        if not isinstance(data, dict) or "type" not in data:
            session.send(Error(reason="message is not a JSON object with a 'type' field"))
            return
        kind = data["type"]
        task_id = data.get("task_id") if isinstance(data.get("task_id"), str) else None
        if kind not in _DELEGATE_TYPES:
            session.send(Error(reason=f"unknown message type {kind!r}; expected one of "
                                      f"{', '.join(_DELEGATE_TYPES)}", task_id=task_id))
            return
        try:
            msg = delegate_message_adapter.validate_python(data)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in err['loc'][1:]) or '(message)'}: {err['msg']}"
                for err in exc.errors()[:5])
            session.send(Error(reason=f"invalid {kind} message: {problems}", task_id=task_id))
            return
        try:
            self._handle(session, msg)
        except Exception as exc:
            log.exception("error handling a delegate message", kind=kind,
                          delegate=session.name)
            session.send(Error(reason=f"the manager failed to handle this {kind} message "
                                      f"({type(exc).__name__}); send it again",
                               task_id=task_id))

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
            self.db.run("UPDATE delegates SET state = ? WHERE delegate_id = ?",
                        DelegateState.DRAINING.value, session.delegate_id)
            self.refresh_waiting_reasons()
        elif isinstance(msg, Register):
            session.send(Error(reason="already registered on this connection"))

    def _owned(self, session: Session, task_id: str) -> Any:
        row = self.store.get(task_id)
        if row is None or row["instance_id"] != session.instance_id:
            session.send(Error(reason=f"task {task_id} is not assigned to this delegate",
                               task_id=task_id))
            return None
        return row

    def _accept(self, session: Session, task_id: str) -> None:
        row = self._owned(session, task_id)
        if row is None:
            return
        if row["status"] == TaskStatus.ASSIGNED:
            self.db.run("UPDATE tasks SET status = 'RUNNING', started_at = ?, session_id = ? "
                        "WHERE task_id = ? AND status = 'ASSIGNED'", now(),
                        session.session_id, task_id)
            self.store.changed(task_id)
        elif row["status"] in FINISHED:
            session.send(Abort(task_id=task_id, reason=f"task already {row['status']}"))

    def _reject(self, session: Session, task_id: str, reason: str) -> None:
        row = self._owned(session, task_id)
        if row is None or row["status"] != TaskStatus.ASSIGNED:
            return
        self.db.run("UPDATE tasks SET status = 'QUEUED', delegate_id = NULL, "
                    "instance_id = NULL, session_id = NULL, assigned_at = NULL, "
                    "waiting_reason = ? WHERE task_id = ? AND status = 'ASSIGNED'",
                    f"rejected by delegate {session.name}: {reason}", task_id)
        self.dispatch()

    def _task_message(self, session: Session, msg: TaskMessage) -> None:
        row = self._owned(session, msg.task_id)
        if row is None:
            return
        if row["status"] == TaskStatus.ASSIGNED:
            self._accept(session, msg.task_id)
        ack = self.store.store(msg.task_id, msg.seq, msg.payload)
        session.send(Ack(task_id=msg.task_id, seq=ack))

    # ------------------------------------------------------------------ dispatch

    def dispatch(self) -> None:
        """Assign queued tasks, oldest first, to sessions with credit."""
        ready = [s for s in self.sessions.values()
                 if s.credit > 0 and not s.draining and not s.closed]
        if not ready:
            return
        for row in self.db.all("SELECT task_id, account_id, type, selectors FROM tasks "
                               "WHERE status = 'QUEUED' ORDER BY rowid"):
            selectors = set(loads(row["selectors"]))
            for session in ready:
                if session.credit <= 0 or not self._fits(session, row, selectors):
                    continue
                if self._assign(session, row["task_id"]):
                    break
            ready = [s for s in ready if s.credit > 0]
            if not ready:
                return

    @staticmethod
    def _fits(session: Session, row: Any, selectors: set[str]) -> bool:
        return ((row["account_id"] is None or row["account_id"] == session.account_id)
                and selectors <= session.tags and row["type"] in session.task_types)

    def _assign(self, session: Session, task_id: str) -> bool:
        with self.db.tx():
            changed = self.db.run(
                "UPDATE tasks SET status = 'ASSIGNED', delegate_id = ?, instance_id = ?, "
                "session_id = ?, assigned_at = ?, waiting_reason = NULL "
                "WHERE task_id = ? AND status = 'QUEUED'",
                session.delegate_id, session.instance_id, session.session_id, now(), task_id)
        if not changed:
            return False
        session.credit -= 1
        row = self.store.get(task_id)
        session.send(Assign(task=TaskSpec(
            task_id=task_id, type=row["type"], params=loads(row["params"]),
            secrets=self.store.secrets_of(row), context=loads(row["context"]),
            timeout=row["timeout"], execution_id=row["execution_id"],
            step_id=row["step_id"])))
        self.store.changed(task_id)
        return True

    # ------------------------------------------------------------------ waiting reasons

    def waiting_reason(self, account_id: str | None, task_type: str,
                       selectors: set[str]) -> str:
        live = [s for s in self.sessions.values()
                if account_id is None or s.account_id == account_id]
        scope = f" for account {account_id}" if account_id else ""
        if not live:
            return f"no delegate connected{scope}; start one with 'delegate run'"
        tagged = [s for s in live if selectors <= s.tags]
        if not tagged:
            every = set().union(*(s.tags for s in live))
            missing = sorted(selectors - every) or sorted(selectors)
            connected = ", ".join(s.label() for s in live)
            return (f"no connected delegate has tags [{', '.join(missing)}]; "
                    f"connected: {connected}")
        typed = [s for s in tagged if task_type in s.task_types]
        if not typed:
            names = ", ".join(s.name for s in tagged)
            return (f"no connected delegate with these tags supports task type "
                    f"{task_type!r} (checked: {names})")
        if all(s.draining for s in typed):
            return f"every matching delegate is draining: {', '.join(s.name for s in typed)}"
        return f"waiting for a free slot on: {', '.join(sorted({s.name for s in typed}))}"

    def refresh_waiting_reasons(self, task_ids: list[str] | None = None) -> None:
        sql = ("SELECT task_id, account_id, type, selectors, waiting_reason FROM tasks "
               "WHERE status = 'QUEUED'")
        rows = self.db.all(sql)
        if task_ids is not None:
            wanted = set(task_ids)
            rows = [r for r in rows if r["task_id"] in wanted]
        changes = []
        for row in rows:
            reason = self.waiting_reason(row["account_id"], row["type"],
                                         set(loads(row["selectors"])))
            if (row["waiting_reason"] or "").startswith("rejected by") and \
                    reason.startswith("waiting for a free slot"):
                continue
            if reason != row["waiting_reason"]:
                changes.append((reason, row["task_id"]))
        if changes:
            with self.db.tx() as c:
                c.executemany("UPDATE tasks SET waiting_reason = ? WHERE task_id = ?", changes)

    # ------------------------------------------------------------------ API actions

    def submit(self, spec: NewTask) -> str:
        task_id = self.store.create(spec)
        self.refresh_waiting_reasons([task_id])
        self.dispatch()
        return task_id

    def abort(self, task_id: str, reason: str) -> Any:
        row = self.store.get(task_id)
        if row is None or row["status"] in FINISHED:
            return row
        if row["status"] == TaskStatus.QUEUED:
            self.store.finish(task_id, TaskStatus.ABORTED, error=reason)
            return self.store.get(task_id)
        self.db.run("UPDATE tasks SET abort_reason = ? WHERE task_id = ?", reason, task_id)
        session = self._session_of(row)
        if row["status"] == TaskStatus.ASSIGNED:
            # Not accepted yet: it never started, so it ends now; tell the delegate too.
            self.store.finish(task_id, TaskStatus.ABORTED, error=reason)
        if session is not None:
            session.send(Abort(task_id=task_id, reason=reason))
        return self.store.get(task_id)

    def _session_of(self, row: Any) -> Session | None:
        for s in self.sessions.values():
            if s.instance_id == row["instance_id"] and not s.closed:
                return s
        return None

    def revoke(self, token_id: str) -> bool:
        changed = self.db.run("UPDATE tokens SET revoked_at = ? WHERE token_id = ? AND "
                              "revoked_at IS NULL", now(), token_id)
        for session in list(self.sessions.values()):
            if session.token_id == token_id:
                session.send(Disconnect(reason=f"token {token_id} was revoked", fatal=True))
                session.close(CLOSE_REVOKED, "token revoked")
                self.detach(session)
        return changed > 0

    # ------------------------------------------------------------------ watchdog

    def check_leases(self) -> None:
        t = now()
        ttl = self.settings.lease_ttl
        rows = self.db.all("SELECT t.task_id, t.instance_id, t.started_at, t.timeout, "
                           "d.name FROM tasks t LEFT JOIN delegates d ON "
                           "d.delegate_id = t.delegate_id WHERE t.status = 'RUNNING'")
        for row in rows:
            seen = max(self.last_seen.get(row["instance_id"], self.started_at),
                       self.started_at)
            name = row["name"] or "?"
            if t > seen + ttl:
                self.store.finish(row["task_id"], TaskStatus.LOST, error=(
                    f"delegate {name} stopped answering; its tasks are presumed lost"))
                session = self._session_of(row)
                if session is not None:
                    session.send(Abort(task_id=row["task_id"], reason="lease expired"))
            elif row["started_at"] and t > row["started_at"] + row["timeout"] + ttl:
                self.store.finish(row["task_id"], TaskStatus.TIMED_OUT, error=(
                    f"no result from delegate {name} within the task's timeout "
                    f"({row['timeout']:g}s) plus the lease ({ttl:g}s)"))
                session = self._session_of(row)
                if session is not None:
                    session.send(Abort(task_id=row["task_id"], reason="timed out"))
