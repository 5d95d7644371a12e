"""The admin HTTP API (``Authorization: Bearer <admin token>``)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Header, HTTPException, Query, Request, Response
from fastapi.responses import StreamingResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from manager.accounts import AccountRequired, account_for
from manager.by_reference import prepare, submit_by_reference
from manager.db import loads, now
from manager.dispatch import TooLarge, check_fits
from manager.executions import Busy
from manager.files import BadPath
from manager.idempotency import BadKey, KeyReused
from manager.keys import tokens_equal
from manager.models import (
    AbortRequest,
    DelegateList,
    DelegateView,
    ErrorAnswer,
    ExecutionFile,
    ExecutionList,
    ExecutionSubmitted,
    ExecutionView,
    FileInfo,
    FileList,
    RollbackAnswer,
    RollbackRequest,
    Submitted,
    TaskAbortAnswer,
    TaskFile,
    TaskList,
    TaskView,
    TokenCreate,
    TokenCreated,
    TokenList,
    TokenView,
    UnitView,
)
from manager.state import State
from manager.taskstore import FINISHED, NewTask
from wire import auth
from wire.protocol import TaskStatus

_bearer = HTTPBearer(auto_error=False, description="the manager's admin token")


def state(request: Request) -> State:
    st: State = request.app.state.manager
    return st


def require_admin(request: Request, creds: Annotated[HTTPAuthorizationCredentials | None,
                                                    Depends(_bearer)]) -> None:
    expected = state(request).admin_token
    if creds is None or not tokens_equal(creds.credentials, expected):
        raise HTTPException(401, "admin token refused: set MANAGER_ADMIN_TOKEN to the token "
                                 "the manager printed the location of",
                            headers={"WWW-Authenticate": "Bearer"})


_WHY = {400: "the request is malformed: the detail says what to change",
        401: "no admin token, or a wrong one",
        403: "not yours: another account's",
        404: "nothing by that id or path",
        409: "refused in the current state (or an Idempotency-Key reused with another "
             "body): the detail says why",
        413: "too large: the detail gives the limit"}


def answers(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI entries for the error answers a route gives."""
    return {code: {"model": ErrorAnswer, "description": _WHY[code]} for code in codes}


MAX_SEQ = 2**62
"""Below SQLite's 64-bit integer limit: a larger ``after`` broke the answer off mid-body."""
MAX_AGE = 10 * 365 * 86400.0

router = APIRouter(prefix="/api", dependencies=[Depends(require_admin)],
                   responses=answers(401))
StateDep = Annotated[State, Depends(state)]


# --------------------------------------------------------------------------- tokens


@router.post("/tokens", response_model=TokenCreated, status_code=201, tags=["tokens"],
             responses=answers(400))
async def create_token(body: TokenCreate, st: StateDep) -> dict[str, Any]:
    """Mint a delegate token for an account. The token is in this answer only."""
    token, token_id = auth.new_token()
    created = now()
    with st.db.tx():
        st.db.run("INSERT INTO tokens (token_id, account_id, name, created_at, key_sealed) "
                  "VALUES (?,?,?,?,?)", token_id, body.account_id, body.name, created,
                  st.box.seal(auth.derive_key(token).hex()))
    return {"token_id": token_id, "account_id": body.account_id, "name": body.name,
            "created_at": created, "revoked_at": None, "token": token}


@router.get("/tokens", response_model=TokenList, tags=["tokens"])
async def list_tokens(st: StateDep) -> dict[str, Any]:
    rows = st.db.all("SELECT token_id, account_id, name, created_at, revoked_at FROM tokens "
                     "ORDER BY created_at")
    return {"tokens": [dict(r) for r in rows]}


@router.delete("/tokens/{token_id}", response_model=TokenView, tags=["tokens"],
             responses=answers(404))
async def revoke_token(token_id: str, st: StateDep) -> dict[str, Any]:
    """Revoke a token; every delegate connected with it is disconnected."""
    st.hub.revoke(token_id)
    row = st.db.one("SELECT token_id, account_id, name, created_at, revoked_at FROM tokens "
                    "WHERE token_id = ?", token_id)
    if row is None:
        raise HTTPException(404, f"no token {token_id}")
    return dict(row)


# --------------------------------------------------------------------------- tasks


def task_view(st: State, row: Any) -> dict[str, Any]:
    delegate = None
    if row["delegate_id"]:
        d = st.db.one("SELECT name FROM delegates WHERE delegate_id = ?", row["delegate_id"])
        delegate = d["name"] if d else None
    units = [UnitView(name=u["unit"], status=u["status"], started_at=u["started_at"],
                      ended_at=u["ended_at"]) for u in st.store.units(row["task_id"])]
    return {
        "task_id": row["task_id"], "type": row["type"], "status": row["status"],
        "account_id": row["account_id"], "selectors": loads(row["selectors"]),
        "params": loads(row["params"]), "timeout": row["timeout"],
        "secret_names": sorted(st.store.secrets_of(row)),
        "created_at": row["created_at"], "assigned_at": row["assigned_at"],
        "started_at": row["started_at"], "ended_at": row["ended_at"],
        "delegate_id": row["delegate_id"], "delegate_name": delegate,
        "waiting_reason": row["waiting_reason"], "units": units,
        "output": loads(row["output"]), "error": row["error"], "last_seq": row["last_seq"],
        "log_truncated": bool(row["truncated"]), "execution_id": row["execution_id"],
        "step_id": row["step_id"], "late_result": bool(row["late_result"]),
    }


IdempotencyKey = Annotated[str | None, Header(
    alias="Idempotency-Key",
    description="a retried request with the same key and body answers the first answer "
                "and creates nothing; the same key with another body is 409")]


def _replayed(st: State, account: str | None, kind: str, key: str | None,
              body: Any) -> tuple[str, dict[str, Any] | None]:
    """(digest of the body, the first answer if ``key`` was used before)."""
    if key is None:
        return "", None
    try:
        key = st.idempotency.check_key(key)
        digest = st.idempotency.digest(body)
        return digest, st.idempotency.replay(account, kind, key, digest)
    except BadKey as exc:
        raise HTTPException(400, str(exc)) from None
    except KeyReused as exc:
        raise HTTPException(409, str(exc)) from None


@router.post("/tasks", response_model=Submitted, status_code=201, tags=["tasks"],
             responses=answers(400, 409, 413))
async def submit_task(body: TaskFile, st: StateDep,
                      idempotency_key: IdempotencyKey = None) -> dict[str, Any]:
    """Queue a task. It is assigned at once if a matching delegate has a free slot;
    otherwise ``waiting_reason`` says what it waits for."""
    account = _account(st, body.account_id, "task")
    digest, first = _replayed(st, account, "task", idempotency_key,
                              body.model_dump(mode="json"))
    if first is not None:
        return first
    spec = NewTask(
        type=body.type, selectors=body.selectors, params=body.params, secrets=body.secrets,
        context=body.context, timeout=body.timeout, account_id=account)
    try:
        check_fits(spec)
        with st.db.tx():
            task_id = st.hub.submit(spec)
            row = st.store.get(task_id)
            answer = {"task_id": task_id, "status": row["status"],
                      "waiting_reason": row["waiting_reason"]}
            if idempotency_key is not None:
                st.idempotency.remember(account, "task", idempotency_key.strip(),
                                        digest, task_id, answer)
    except TooLarge as exc:
        raise HTTPException(413, str(exc)) from None
    # The commit queued the assignment for the delegate's writer; one turn of the loop
    # lets it go out before this answer is serialised and written (about 1 ms sooner).
    await asyncio.sleep(0)
    return answer


@router.get("/tasks", response_model=TaskList, tags=["tasks"])
async def list_tasks(st: StateDep, status: TaskStatus | None = None,
               limit: Annotated[int, Query(ge=1, le=1000)] = 50) -> dict[str, Any]:
    rows = st.db.all("SELECT * FROM tasks WHERE (? IS NULL OR status = ?) "
                     "ORDER BY created_at DESC, task_id DESC LIMIT ?",
                     status.value if status else None, status.value if status else None, limit)
    return {"tasks": [task_view(st, r) for r in rows]}


def _task_or_404(st: State, task_id: str) -> Any:
    row = st.store.get(task_id)
    if row is None:
        raise HTTPException(404, f"no task {task_id}")
    return row


@router.get("/tasks/{task_id}", response_model=TaskView, tags=["tasks"],
             responses=answers(404))
async def get_task(task_id: str, st: StateDep) -> dict[str, Any]:
    return task_view(st, _task_or_404(st, task_id))


@router.post("/tasks/{task_id}/abort", response_model=TaskAbortAnswer, tags=["tasks"],
             responses=answers(404))
async def abort_task(task_id: str, st: StateDep,
               body: Annotated[AbortRequest | None, Body()] = None) -> TaskAbortAnswer:
    """QUEUED and ASSIGNED tasks end ABORTED at once; a RUNNING task is aborted by its
    delegate and ends when the delegate's result arrives. The answer says which."""
    before = _task_or_404(st, task_id)["status"]
    if before in FINISHED:
        return TaskAbortAnswer(task_id=task_id, status=before, already_finished=True,
                               message=f"task {task_id} had already finished ({before}); "
                                       "nothing to abort")
    st.hub.abort(task_id, (body or AbortRequest()).reason)
    await asyncio.sleep(0)  # let the abort frame go out before this answer (as on submit)
    status = _task_or_404(st, task_id)["status"]
    message = (f"task {task_id} aborted" if status in FINISHED else
               f"abort sent to the delegate running task {task_id}; it ends when the "
               "delegate answers")
    return TaskAbortAnswer(task_id=task_id, status=status, already_finished=False,
                           message=message)


@router.get("/tasks/{task_id}/logs", tags=["tasks"],
            responses={**answers(404), 200: {"content": {"application/x-ndjson": {}},
                             "description": "one JSON entry per line"}})
async def task_logs(task_id: str, st: StateDep,
                    after: Annotated[int, Query(ge=0, le=MAX_SEQ)] = 0,
                    follow: bool = False) -> StreamingResponse:
    """The task's entries in order as NDJSON: ``log`` lines (unit, ts, level, text),
    ``unit`` status changes, AWS ``event``s and the final ``result``. ``after``: the
    last entry ``id`` already read. ``follow=true`` streams until the task finishes;
    while waiting, a ``{"kind": "waiting", ...}`` line repeats every 15 s."""
    _task_or_404(st, task_id)

    async def body() -> AsyncIterator[bytes]:
        cursor = after
        last_reason: str | None = None
        while True:
            row = st.store.get(task_id)
            entries = st.store.entries(task_id, cursor)
            if entries:
                cursor = entries[-1]["id"]
                yield "".join(json.dumps(e) + "\n" for e in entries).encode()
                continue
            if not follow or row is None or row["status"] in FINISHED:
                return
            reason = row["waiting_reason"] if row["status"] == "QUEUED" else None
            if reason != last_reason and reason:
                yield (json.dumps({"kind": "waiting", "status": row["status"],
                                   "waiting_reason": reason}) + "\n").encode()
            last_reason = reason
            await st.signals.wait(f"task:{task_id}", 15.0)

    return StreamingResponse(body(), media_type="application/x-ndjson")


# --------------------------------------------------------------------------- delegates


@router.get("/delegates", response_model=DelegateList, tags=["delegates"])
async def list_delegates(st: StateDep) -> dict[str, Any]:
    out = []
    for row in st.db.all("SELECT * FROM delegates ORDER BY account_id, name, connected_at"):
        running = st.db.one("SELECT COUNT(*) AS n FROM tasks WHERE delegate_id = ? AND "
                            "status IN ('RUNNING', 'ASSIGNED')", row["delegate_id"])
        out.append(DelegateView(
            delegate_id=row["delegate_id"], account_id=row["account_id"], name=row["name"],
            instance_id=row["instance_id"], tags=loads(row["tags"]), version=row["version"],
            hostname=row["hostname"], state=row["state"], capacity=row["capacity"],
            task_types=loads(row["task_types"]), running_tasks=running["n"] if running else 0,
            last_heartbeat=row["last_heartbeat"], connected_at=row["connected_at"]))
    return {"delegates": out}


@router.delete("/delegates", tags=["delegates"])
async def prune_delegates(st: StateDep,
                          older_than: Annotated[float, Query(ge=0, le=MAX_AGE)] = 3600,
                          account: str | None = None) -> dict[str, Any]:
    """Forget the ``disconnected`` rows each delegate restart leaves: those silent for
    more than ``older_than`` seconds that hold no task. Answers ``{"pruned": [...]}``."""
    cutoff = now() - older_than
    rows = st.db.all(
        "SELECT delegate_id, account_id, name, instance_id FROM delegates d "
        "WHERE state = 'disconnected' AND COALESCE(last_heartbeat, connected_at, 0) < ? "
        "AND (? IS NULL OR account_id = ?) AND NOT EXISTS (SELECT 1 FROM tasks t WHERE "
        "t.instance_id = d.instance_id AND t.status IN ('RUNNING', 'ASSIGNED'))",
        cutoff, account, account)
    # async, so it runs on the event loop like every other writer (a sync endpoint would
    # run in FastAPI's thread pool, beside the loop's transactions on one connection).
    with st.db.tx():
        for row in rows:
            st.db.run("DELETE FROM delegates WHERE delegate_id = ?", row["delegate_id"])
    return {"pruned": [dict(row) for row in rows]}


# --------------------------------------------------------------------------- executions


def _check_steps_fit(body: ExecutionFile) -> None:
    """413 for a step that is too large to send as written (rendering can only add to
    it: what grows past the limit then fails that step instead)."""
    for step in [*body.steps, *body.rollback_steps]:
        try:
            check_fits(NewTask(type=step.type, selectors=[], params=step.params,
                               secrets=body.secrets, context={}, timeout=0.0))
        except TooLarge as exc:
            raise HTTPException(413, f"step {step.id}: {exc}") from None


@router.post("/executions", response_model=ExecutionSubmitted, status_code=201,
             tags=["executions"],
             responses=answers(400, 409, 413))
async def submit_execution(body: ExecutionFile, st: StateDep,
                           idempotency_key: IdempotencyKey = None) -> dict[str, Any]:
    """Start an execution, or queue it behind the execution deploying the same service."""
    body = body.model_copy(update={"account_id": _account(st, body.account_id, "execution")})
    digest, first = _replayed(st, body.account_id, "execution", idempotency_key,
                              body.model_dump(mode="json", by_alias=True))
    if first is not None:
        return first
    _check_steps_fit(body)
    prepare(st, body)  # an execution naming stored definitions: manager/by_reference.py
    # One transaction: the execution, its first task and the key are stored together,
    # and what is sent to delegates goes out after the commit.
    with st.db.tx():
        execution_id = submit_by_reference(st, body)
        view = st.executions.view(execution_id) or {}
        answer = {"execution_id": execution_id, "status": view.get("status", "QUEUED"),
                  "waiting_reason": view.get("waiting_reason")}
        if idempotency_key is not None:
            st.idempotency.remember(body.account_id, "execution", idempotency_key.strip(),
                                    digest, execution_id, answer)
    await asyncio.sleep(0)  # let its first step's assignment go out before this answer
    return answer


@router.get("/executions", response_model=ExecutionList, tags=["executions"])
async def list_executions(st: StateDep, status: str | None = None,
                    limit: Annotated[int, Query(ge=1, le=1000)] = 50) -> dict[str, Any]:
    return {"executions": st.executions.list(status, limit)}


def _execution_or_404(st: State, execution_id: str) -> dict[str, Any]:
    view = st.executions.view(execution_id)
    if view is None:
        raise HTTPException(404, f"no execution {execution_id}")
    return view


@router.get("/executions/{execution_id}", response_model=ExecutionView, tags=["executions"],
             responses=answers(404))
async def get_execution(execution_id: str, st: StateDep,
                        wait: Annotated[float, Query(ge=0, le=60)] = 0,
                        known: str | None = None) -> dict[str, Any]:
    """``wait=N&known=<version>``: answer when the execution changed from the state
    the caller saw (its ``version``), or after N s — a long poll for followers."""
    view = _execution_or_404(st, execution_id)
    if wait and known and view["version"] == known:
        await st.signals.wait(f"execution:{execution_id}", wait)
        view = _execution_or_404(st, execution_id)
    return view


@router.post("/executions/{execution_id}/abort", response_model=ExecutionView,
             tags=["executions"],
             responses=answers(404))
async def abort_execution(execution_id: str, st: StateDep,
                    body: Annotated[AbortRequest | None, Body()] = None) -> dict[str, Any]:
    """Stop without rolling back: the running step is aborted, nothing else starts."""
    _execution_or_404(st, execution_id)
    st.executions.abort(execution_id, (body or AbortRequest()).reason)
    return _execution_or_404(st, execution_id)


@router.post("/executions/{execution_id}/rollback", response_model=RollbackAnswer,
             tags=["executions"],
             responses=answers(404, 409))
async def rollback_execution(execution_id: str, st: StateDep,
                       body: Annotated[RollbackRequest | None, Body()] = None
                       ) -> dict[str, Any]:
    """Roll back on request: interrupt the running step, then run the rollback steps of
    every step that started, newest first. Only the latest execution of a service (or
    the running one) unless ``force``: the 409 lists the newer ones and the plan."""
    _execution_or_404(st, execution_id)
    try:
        plan = st.executions.rollback(execution_id, force=(body or RollbackRequest()).force)
    except Busy as exc:  # Superseded too: its detail lists the newer ones
        raise HTTPException(409, str(exc)) from None
    return {**_execution_or_404(st, execution_id), "plan": plan or ""}


def _account(st: State, given: str | None, what: str) -> str | None:
    try:
        return account_for(st.db, given, what)
    except AccountRequired as exc:
        raise HTTPException(422, str(exc)) from None


# --------------------------------------------------------------------------- files


@router.put("/files", response_model=FileInfo, tags=["files"],
             responses=answers(400, 413))
async def put_file(request: Request, st: StateDep, account: str, path: str) -> dict[str, Any]:
    """Store a file (the request body, raw) at ``path`` in ``account``."""
    content = await request.body()
    try:
        return st.files.put(account, path, content)
    except BadPath as exc:
        raise HTTPException(400, f"path refused: {exc}") from None
    except ValueError as exc:
        raise HTTPException(413, str(exc)) from None


@router.get("/files", response_model=FileList, tags=["files"],
             responses=answers(400))
async def list_files(st: StateDep, account: str | None = None, prefix: str = "") -> dict[str, Any]:
    try:
        return {"files": st.files.list(account, prefix)}
    except BadPath as exc:
        raise HTTPException(400, f"path refused: {exc}") from None


@router.get("/files/content", tags=["files"], response_class=Response,
            responses={**answers(400, 404),
                       200: {"content": {"application/octet-stream": {}}}})
async def get_file(st: StateDep, account: str, path: str) -> Response:
    return file_response(st, account, path)


def file_response(st: State, account: str, path: str) -> Response:
    """A stored file's bytes; 400 for a refused path, 404 for a missing file (admins and
    delegates read files the same way)."""
    try:
        content = st.files.get(account, path)
    except BadPath as exc:
        raise HTTPException(400, f"path refused: {exc}") from None
    if content is None:
        raise HTTPException(404, f"no file {path} in account {account}")
    return Response(content, media_type="application/octet-stream")


@router.delete("/files", status_code=204, tags=["files"],
             responses=answers(400, 404))
async def delete_file(st: StateDep, account: str, path: str) -> Response:
    try:
        found = st.files.delete(account, path)
    except BadPath as exc:
        raise HTTPException(400, f"path refused: {exc}") from None
    if not found:
        raise HTTPException(404, f"no file {path} in account {account}")
    return Response(status_code=204)
