"""HTTP endpoints for delegates (not admins): the file store read path and the log
service. Each request carries a fresh delegate JWT (``wire.auth.sign``) as
``Authorization: Bearer``: audience ``files`` for files, ``logs`` for the log service."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Request, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import ValidationError

from manager.api import answers, file_response, state
from manager.db import now
from manager.hub import Refusal
from manager.models import LogBatch, LogBatchAck
from manager.state import State
from manager.task_states import TaskEvent
from wire import jsonlimits
from wire.protocol import TaskStatus

router = APIRouter(prefix="/api/delegate", tags=["delegate"])
_bearer = HTTPBearer(auto_error=False, description="a delegate JWT signed with its token")
MAX_LOG_BATCH_BYTES = 16 * 1024 * 1024


def _claims(st: State, creds: HTTPAuthorizationCredentials | None,
            audience: str) -> dict[str, Any]:
    if creds is None:
        raise HTTPException(401, "a delegate credential is required (Authorization: Bearer "
                                 f"<JWT with audience {audience!r}>)")
    try:
        _, claims = st.hub.check_credential(creds.credentials, audience=audience)
    except Refusal as exc:
        raise HTTPException(401, f"delegate credential refused: {exc}") from None
    return claims


async def _body_within(request: Request, limit: int) -> bytes:
    """The body, refused (413) as soon as it passes ``limit``: Content-Length is only a
    claim, and a chunked body has none, so count while streaming rather than read whole."""
    try:
        claimed = int(request.headers.get("content-length") or 0)
    except ValueError:
        raise HTTPException(400, "Content-Length is not a number") from None
    too_big = f"batch over the limit of {limit} bytes; send smaller batches"
    if claimed > limit:
        raise HTTPException(413, too_big)
    parts: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise HTTPException(413, too_big)
        parts.append(chunk)
    return b"".join(parts)


def _batch(body: bytes) -> LogBatch:
    try:
        return LogBatch.model_validate(jsonlimits.loads(body))
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or '(body)'}: {e['msg']}"
                             for e in exc.errors()[:5])
        raise HTTPException(422, f"invalid log batch: {problems}") from None
    except ValueError as exc:  # not JSON, not UTF-8, or nested too deep
        raise HTTPException(400, f"log batch is not readable JSON: {exc}"[:300]) from None


Creds = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]


@router.get("/files", response_class=Response,
            responses={**answers(400, 403, 404),
                       401: {"description": "no delegate JWT, or one refused"},
                       200: {"content": {"application/octet-stream": {}}}})
async def delegate_get_file(request: Request, creds: Creds, path: str,
                      account: str | None = None) -> Response:
    """A file of the delegate's own account. ``account``, when given, must be it."""
    st = state(request)
    claims = _claims(st, creds, "files")
    own = str(claims["iss"])
    if account is not None and account != own:
        raise HTTPException(403, f"account mismatch: this delegate belongs to account {own}, "
                                 f"not {account}")
    return file_response(st, own, path)


@router.post("/logs", response_model=LogBatchAck, responses={
    400: {"description": "the body is not readable JSON"},
    401: {"description": "no delegate JWT, or one refused"},
    413: {"description": "the batch is over 16 MiB"},
    422: {"description": "the batch does not match the schema"}})
async def delegate_logs(request: Request, creds: Creds) -> dict[str, Any]:
    """The log service: the same sequenced task messages as the websocket, with the
    same semantics — a message is stored only if it is the next ``seq`` of its task,
    duplicates are dropped, and ``acks`` holds, per task, the highest contiguous seq
    the manager has (resend from there + 1)."""
    st = state(request)
    claims = _claims(st, creds, "logs")
    batch = _batch(await _body_within(request, MAX_LOG_BATCH_BYTES))
    acks: dict[str, int] = {}
    errors: dict[str, str] = {}
    for msg in batch.messages:
        if msg.task_id in errors:
            continue
        row = st.store.get(msg.task_id)
        owner = None if row is None or not row["delegate_id"] else st.db.one(
            "SELECT account_id, name FROM delegates WHERE delegate_id = ?", row["delegate_id"])
        if owner is None or owner["account_id"] != claims["iss"] or \
                owner["name"] != claims["sub"]:
            errors[msg.task_id] = f"task {msg.task_id} is not assigned to this delegate"
            continue
        if row["status"] == TaskStatus.ASSIGNED:
            st.store.apply(msg.task_id, TaskEvent.START,
                           started_at=row["started_at"] or now())
        st.hub.last_seen[row["delegate_id"]] = now()
        acks[msg.task_id] = st.store.store(msg.task_id, msg.seq, msg.payload)
    return {"acks": acks, "errors": errors}
