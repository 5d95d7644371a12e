"""Who a delegate is, and what it may resume.

A delegate proves its token with a JWT; its identity is then (account, name, instance),
one ``delegate_id``. Every task is owned by one ``delegate_id``: a resume, a message, an
accept or a result for a task owned by another delegate — of this account or another —
is refused and logged, whatever ids the delegate chose to send."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import structlog

from manager.db import Database, dumps, now
from manager.keys import SecretBox
from manager.naming import new_id
from manager.seen_jwts import SeenJwtIds
from manager.sessions import Session
from manager.task_states import TaskEvent
from manager.taskstore import FINISHED, TaskStore
from wire import auth
from wire.protocol import SUPPORTED_PROTOCOL_VERSIONS, DelegateState, Register, TaskStatus

log = structlog.get_logger("manager.registration")


class Refusal(Exception):
    """Registration refused; ``str(exc)`` is sent to the delegate as is."""


@dataclass
class Resumed:
    """What a registration's ``running_tasks`` came to."""

    acked: dict[str, int] = field(default_factory=dict)
    cancel: dict[str, str] = field(default_factory=dict)
    lost: list[str] = field(default_factory=list)


class Registrar:
    def __init__(self, db: Database, box: SecretBox, store: TaskStore) -> None:
        self.db = db
        self.box = box
        self.store = store
        self.replay = SeenJwtIds(db)

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

    def admit(self, reg: Register, ws: Any) -> tuple[Session, int]:
        """Check a registration; return the new (not yet stored) session and the
        protocol version to speak. Raises Refusal."""
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
        existing = self.db.one("SELECT delegate_id FROM delegates WHERE account_id = ? AND "
                               "name = ? AND instance_id = ?",
                               reg.account_id, reg.name, reg.instance_id)
        session = Session(
            session_id=new_id("ses"),
            delegate_id=existing["delegate_id"] if existing else new_id("dlg"),
            account_id=reg.account_id, name=reg.name, instance_id=reg.instance_id,
            token_id=token["token_id"], tags=frozenset(reg.tags),
            task_types=frozenset(reg.task_types), capacity=reg.capacity, ws=ws,
            draining=reg.draining, last_frame=now())
        return session, max(common)

    def store_delegate(self, session: Session, reg: Register, replica_id: str) -> None:
        t = now()
        state = DelegateState.DRAINING if reg.draining else DelegateState.CONNECTED
        self.db.run(
            "INSERT INTO delegates (delegate_id, account_id, name, instance_id, token_id, "
            "tags, version, hostname, capacity, task_types, state, connected_at, "
            "last_heartbeat, session_id, replica_id) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?) "
            "ON CONFLICT (delegate_id) DO UPDATE SET tags = excluded.tags, "
            "version = excluded.version, hostname = excluded.hostname, "
            "capacity = excluded.capacity, task_types = excluded.task_types, "
            "state = excluded.state, connected_at = excluded.connected_at, "
            "last_heartbeat = excluded.last_heartbeat, token_id = excluded.token_id, "
            "session_id = excluded.session_id, replica_id = excluded.replica_id",
            session.delegate_id, reg.account_id, reg.name, reg.instance_id,
            session.token_id, dumps(sorted(reg.tags)), reg.version, reg.hostname,
            reg.capacity, dumps(sorted(reg.task_types)), state.value, t, t,
            session.session_id, replica_id)

    def unreceived(self, session: Session) -> list[str]:
        """Tasks assigned to this delegate over an earlier session that the registration
        did not list as running (after :meth:`resume`, which started those it lists)."""
        return [r["task_id"] for r in self.db.all(
            "SELECT task_id FROM tasks WHERE status = 'ASSIGNED' AND delegate_id = ? AND "
            "(session_id IS NULL OR session_id != ?) ORDER BY task_id",
            session.delegate_id, session.session_id)]

    def resume(self, session: Session, running: list[str]) -> Resumed:
        """Reconcile the tasks a registering delegate says it runs with what the
        manager holds. Call inside the registration's transaction."""
        out = Resumed()
        for task_id in running:
            refusal = self._resume_one(session, task_id)
            if refusal is None:
                out.acked[task_id] = int(self.store.get(task_id)["last_seq"])
            else:
                out.cancel[task_id] = refusal
        for row in self.db.all("SELECT task_id FROM tasks WHERE status = 'RUNNING' AND "
                               "delegate_id = ?", session.delegate_id):
            if row["task_id"] not in out.acked:
                out.lost.append(row["task_id"])
        return out

    def _resume_one(self, session: Session, task_id: str) -> str | None:
        """None if the session may carry on with the task, else why not."""
        row = self.store.get(task_id)
        if row is None:
            return "unknown task: the manager has no record of it"
        if row["delegate_id"] != session.delegate_id:
            log.warning("resume refused: the task is not this delegate's", task=task_id,
                        delegate=session.name, account=session.account_id,
                        instance=session.instance_id)
            return "this task is not assigned to this delegate"
        status = TaskStatus(row["status"])
        if status == TaskStatus.LOST:
            # Presumed lost while this very instance was away: let it deliver the rest
            # and its result, which will be recorded as late.
            self.db.run("UPDATE tasks SET session_id = ? WHERE task_id = ?",
                        session.session_id, task_id)
            return None
        if status.value in FINISHED:
            return f"task already finished ({status.value})"
        if status in (TaskStatus.RUNNING, TaskStatus.ASSIGNED):
            # ASSIGNED: the delegate started it but its accept never arrived.
            self.store.apply(task_id, TaskEvent.START, session_id=session.session_id,
                             started_at=row["started_at"] or now())
            return None
        return f"task is {status.value} on the manager"
