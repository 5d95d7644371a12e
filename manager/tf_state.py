"""Terraform state kept by the manager, for configurations that declare no backend of
their own, so that any delegate can run the next apply or the rollback.

A Terraform step on a delegate points Terraform's built-in ``http`` backend at a loopback
proxy it starts (``tasks.terraform.state_proxy``), which forwards each request here with a
fresh delegate JWT (audience ``tfstate``). State is kept per (account, provisioner
identifier, workspace), sealed like every other secret (a state holds every value the
configuration computed, sensitive ones included).

The lock: ``lock`` takes it (409 with the holder's lock info when another run holds it),
``unlock`` releases it. The delegate releases a lock its Terraform left behind when the
step ends (killed by an abort, say). A lock whose holding task has since ended (a
delegate that died mid-apply) is stale: the next ``lock`` breaks it and says so in the
lock info. An admin can break any lock with ``DELETE /api/tfstate/lock``.

Records: each successful apply's configuration source and variables (sealed), so
``terraform.rollback`` can re-apply the one before; the attempt an apply makes before it
runs (the configuration a rollback with nothing earlier destroys with); and saved plans
(the plan file, for an apply of a plan step's plan on any delegate)."""

from __future__ import annotations

import base64
import json
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response

from manager.api import answers, require_admin, state
from manager.db import Database, now
from manager.delegate_http import Creds, _body_within, _claims
from manager.keys import SecretBox
from manager.state import State
from wire.protocol import TaskStatus

AUDIENCE = "tfstate"
# Its tables are in migration 0002 (manager/migrations/versions/0002_tf_state.py).
RecordKind = Literal["apply", "attempt", "plan"]
MAX_STATE_BYTES = 64 * 1024 * 1024
KEEP_RECORDS = 100  # per (account, provisioner, workspace) and kind


class TfStates:
    def __init__(self, db: Database, box: SecretBox) -> None:
        self.db = db
        self.box = box

    def _row(self, key: tuple[str, str, str]) -> Any:
        return self.db.one("SELECT * FROM tf_states WHERE account_id = ? AND provisioner = ? "
                           "AND workspace = ?", *key)

    def _ensure(self, key: tuple[str, str, str]) -> Any:
        self.db.run("INSERT INTO tf_states (account_id, provisioner, workspace) "
                    "VALUES (?, ?, ?) ON CONFLICT DO NOTHING", *key)
        return self._row(key)

    def get(self, key: tuple[str, str, str]) -> bytes | None:
        row = self._row(key)
        if row is None or row["state_sealed"] is None:
            return None
        return base64.b64decode(self.box.open(row["state_sealed"]))

    def put(self, key: tuple[str, str, str], body: bytes, lock_id: str | None) -> None:
        with self.db.tx():
            row = self._ensure(key)
            if row["lock_id"] and lock_id != row["lock_id"]:
                raise HTTPException(409, self._held(row))
            self.db.run("UPDATE tf_states SET state_sealed = ?, updated_at = ? WHERE "
                        "account_id = ? AND provisioner = ? AND workspace = ?",
                        self.box.seal(base64.b64encode(body).decode()), now(), *key)

    def _held(self, row: Any) -> str:
        return str(row["lock_info"])

    def _stale(self, row: Any) -> str | None:
        """Why the lock ``row`` holds is stale (its task has ended), or None."""
        task = self.db.one("SELECT status FROM tasks WHERE task_id = ?", row["lock_task_id"])
        if task is None:
            return f"its task {row['lock_task_id']} is gone"
        if TaskStatus(task["status"]).finished:
            return f"its task {row['lock_task_id']} ended {task['status']}"
        return None

    def lock(self, key: tuple[str, str, str], info: dict[str, Any], task_id: str,
             delegate: str) -> tuple[bool, str]:
        """(taken, lock info): the lock info of whoever holds it when not taken."""
        with self.db.tx():
            row = self._ensure(key)
            note = ""
            if row["lock_id"] and row["lock_id"] != info.get("ID"):
                why = self._stale(row)
                if why is None:
                    return False, self._held(row)
                note = f"; broke a stale lock ({why})"
            info = {**info, "Info": f"held by task {task_id} on delegate {delegate}{note}"}
            text = json.dumps(info)
            self.db.run("UPDATE tf_states SET lock_id = ?, lock_info = ?, lock_task_id = ?, "
                        "locked_at = ? WHERE account_id = ? AND provisioner = ? AND "
                        "workspace = ?", str(info.get("ID", "")), text, task_id, now(), *key)
            return True, text

    def unlock(self, key: tuple[str, str, str], lock_id: str | None) -> tuple[bool, str]:
        """Release the lock ``lock_id`` (any lock when None: an admin breaking it)."""
        with self.db.tx():
            row = self._row(key)
            if row is None or not row["lock_id"]:
                return True, ""
            if lock_id is not None and lock_id != row["lock_id"]:
                return False, self._held(row)
            self.db.run("UPDATE tf_states SET lock_id = NULL, lock_info = NULL, "
                        "lock_task_id = NULL, locked_at = NULL WHERE account_id = ? AND "
                        "provisioner = ? AND workspace = ?", *key)
            return True, str(row["lock_info"])

    def add_record(self, key: tuple[str, str, str], kind: RecordKind, task_id: str,
                   body: dict[str, Any]) -> int:
        where = "account_id = ? AND provisioner = ? AND workspace = ? AND kind = ?"
        with self.db.tx():
            record_id = self.db.insert_id(
                "INSERT INTO tf_records (account_id, provisioner, workspace, kind, task_id, "
                "created_at, body_sealed) VALUES (?, ?, ?, ?, ?, ?, ?)",
                *key, kind, task_id, now(), self.box.seal(body))
            # A rollback goes back one apply, not a hundred: older records only take room.
            self.db.run(f"DELETE FROM tf_records WHERE {where} AND id NOT IN "
                        f"(SELECT id FROM tf_records WHERE {where} "
                        "ORDER BY id DESC LIMIT ?)", *key, kind, *key, kind, KEEP_RECORDS)
            return record_id

    def record(self, key: tuple[str, str, str], kind: RecordKind, *,
               record_id: int | None = None, before: int | None = None,
               task_id: str | None = None) -> dict[str, Any] | None:
        """One record: by id, by task, or the newest of its kind (older than ``before``)."""
        where = "account_id = ? AND provisioner = ? AND workspace = ? AND kind = ?"
        args: list[Any] = [*key, kind]
        if record_id is not None:
            where += " AND id = ?"
            args.append(record_id)
        if before is not None:
            where += " AND id < ?"
            args.append(before)
        if task_id is not None:
            where += " AND task_id = ?"
            args.append(task_id)
        row = self.db.one(f"SELECT * FROM tf_records WHERE {where} "
                          "ORDER BY id DESC LIMIT 1", *args)
        if row is None:
            return None
        return {"id": row["id"], "taskId": row["task_id"],
                "createdAt": row["created_at"], "body": self.box.open(row["body_sealed"])}


def _states(request: Request) -> TfStates:
    holder = request.app.state
    found: TfStates | None = getattr(holder, "tf_states", None)
    if found is None:
        st: State = state(request)
        found = TfStates(st.db, st.box)
        holder.tf_states = found
    return found


def _own_task(st: State, claims: dict[str, Any], task_id: str) -> None:
    """The task must be running on the delegate that signed the request: a delegate
    writes state only for the work it was given."""
    row = st.store.get(task_id)
    owner = None if row is None or not row["delegate_id"] else st.db.one(
        "SELECT account_id, name FROM delegates WHERE delegate_id = ?", row["delegate_id"])
    if owner is None or owner["account_id"] != claims["iss"] or owner["name"] != claims["sub"]:
        raise HTTPException(403, f"task {task_id} is not assigned to this delegate")


Provisioner = Annotated[str, Query(min_length=1, max_length=200,
                                   description="the steps' provisionerIdentifier")]
Workspace = Annotated[str, Query(min_length=1, max_length=200)]
TaskId = Annotated[str, Query(min_length=1, description="the task making the request")]

router = APIRouter(prefix="/api/delegate/tfstate", tags=["terraform state"],
                   responses={**answers(400, 403),
                              401: {"description": "no delegate JWT, or one refused"}})


def _key(request: Request, creds: Creds, task: str, provisioner: str,
         workspace: str) -> tuple[str, str, str]:
    st = state(request)
    claims = _claims(st, creds, AUDIENCE)
    _own_task(st, claims, task)
    request.state.tf_delegate = str(claims["sub"])
    return str(claims["iss"]), provisioner, workspace


@router.get("/state", response_class=Response,
            responses={200: {"content": {"application/json": {}}},
                       204: {"description": "no state yet"}})
async def get_state(request: Request, creds: Creds, provisioner: Provisioner,
                    workspace: Workspace, task: TaskId) -> Response:
    """The state, as Terraform's http backend reads it (204 when there is none)."""
    key = _key(request, creds, task, provisioner, workspace)
    body = _states(request).get(key)
    if body is None:
        return Response(status_code=204)
    return Response(body, media_type="application/json")


@router.post("/state", status_code=200, responses={409: {"description": "locked by another run"}})
async def put_state(request: Request, creds: Creds, provisioner: Provisioner,
                    workspace: Workspace, task: TaskId,
                    lock_id: Annotated[str | None, Query(alias="ID")] = None) -> Response:
    """Store the state Terraform wrote (with ``ID``, the lock it holds)."""
    key = _key(request, creds, task, provisioner, workspace)
    body = await _body_within(request, MAX_STATE_BYTES)
    _states(request).put(key, body, lock_id)
    return Response(status_code=200)


async def _lock_info(request: Request) -> dict[str, Any]:
    raw = await _body_within(request, 64 * 1024)
    try:
        info = json.loads(raw or b"{}")
    except ValueError:
        raise HTTPException(400, "lock info is not JSON") from None
    if not isinstance(info, dict):
        raise HTTPException(400, "lock info is not a JSON object")
    return info


@router.post("/lock", responses={409: {"description": "held by another run: its lock info"}})
async def lock_state(request: Request, creds: Creds, provisioner: Provisioner,
                     workspace: Workspace, task: TaskId) -> Response:
    """Take the lock; 409 with the holder's lock info when another live run holds it."""
    key = _key(request, creds, task, provisioner, workspace)
    info = await _lock_info(request)
    taken, text = _states(request).lock(key, info, task, request.state.tf_delegate)
    return Response(text, status_code=200 if taken else 409, media_type="application/json")


@router.post("/unlock", responses={409: {"description": "the lock is another run's"}})
async def unlock_state(request: Request, creds: Creds, provisioner: Provisioner,
                       workspace: Workspace, task: TaskId) -> Response:
    key = _key(request, creds, task, provisioner, workspace)
    info = await _lock_info(request)
    lock_id = info.get("ID")
    released, text = _states(request).unlock(key, str(lock_id) if lock_id else None)
    return Response(text, status_code=200 if released else 409, media_type="application/json")


@router.post("/records/{kind}", responses=answers(413))
async def add_record(request: Request, creds: Creds, kind: RecordKind,
                     provisioner: Provisioner, workspace: Workspace,
                     task: TaskId) -> dict[str, int]:
    """Keep a record (sealed): an apply that succeeded, an apply about to run, a plan."""
    key = _key(request, creds, task, provisioner, workspace)
    raw = await _body_within(request, MAX_STATE_BYTES)
    try:
        body = json.loads(raw)
    except ValueError:
        raise HTTPException(400, "record is not JSON") from None
    return {"id": _states(request).add_record(key, kind, task, body)}


@router.get("/records/{kind}", responses=answers(404))
async def get_record(request: Request, creds: Creds, kind: RecordKind,
                     provisioner: Provisioner, workspace: Workspace, task: TaskId,
                     id: int | None = None, before: int | None = None,
                     of_task: Annotated[str | None, Query(alias="ofTask")] = None,
                     ) -> dict[str, Any]:
    """A record by ``id``, by the task that made it (``ofTask``), or the newest one
    (older than ``before``)."""
    key = _key(request, creds, task, provisioner, workspace)
    found = _states(request).record(key, kind, record_id=id, before=before, task_id=of_task)
    if found is None:
        raise HTTPException(404, f"no {kind} record for provisioner {provisioner!r} "
                                 f"workspace {workspace!r}")
    return found


admin_router = APIRouter(prefix="/api/tfstate", tags=["terraform state"],
                         dependencies=[Depends(require_admin)], responses=answers(401))


@admin_router.delete("/lock")
async def break_lock(request: Request, account: Annotated[str, Query(min_length=1)],
                     provisioner: Provisioner,
                     workspace: Workspace = "default") -> dict[str, Any]:
    """Break a lock, whoever holds it (a run that will never release it). Answers the
    lock info it removed (empty when there was none)."""
    _, text = _states(request).unlock((account, provisioner, workspace), None)
    return {"released": json.loads(text) if text else None}


routers = (router, admin_router)
