"""``GET /api/lookups/{kind}``: a short read-only question answered through a delegate.

A look-up is a task (``lookup.<kind>``) the manager submits and waits for, answering its
output. It is not an execution, so the one-deployment-per-service queue never holds it;
its timeout is short; and when no connected delegate could ever take it (no delegate
with the selectors' tags, none supporting the kind, all draining) it is refused at once
with the reason instead of waiting in the queue."""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request

from manager.accounts import AccountRequired, account_for
from manager.api import require_admin, state
from manager.db import loads
from manager.dispatch import Connected, waiting_reason
from manager.state import State
from manager.taskstore import FINISHED, NewTask
from wire.lookups import KINDS, LOOKUP_TIMEOUT, MAX_LOOKUP_TIMEOUT, LookupKind, cli_flag
from wire.protocol import TaskStatus

router = APIRouter(prefix="/api", dependencies=[Depends(require_admin)], tags=["lookups"])
StateDep = Annotated[State, Depends(state)]

_ANSWERS: dict[int | str, dict[str, Any]] = {
    400: {"description": "a parameter the kind needs is missing"},
    404: {"description": "no such look-up kind"},
    502: {"description": "the delegate's look-up failed (the detail says how: AWS "
                         "refused, not found ...)"},
    409: {"description": "no connected delegate can answer: the detail names the "
                         "selectors that matched none"},
    504: {"description": "no answer within the timeout (the task is aborted)"},
}


class NoDelegate(Exception):
    """No connected delegate could take the look-up (the message says why)."""


def unanswerable(sessions: Iterable[Connected], account_id: str | None, task_type: str,
                 selectors: set[str]) -> str | None:
    """Why no connected delegate can take the task now or soon, or None when one can
    (it may still be busy: then the look-up waits for a slot within its timeout). Pure."""
    live = list(sessions)
    fits = [s for s in live if (account_id is None or s.account_id == account_id)
            and selectors <= s.tags and task_type in s.task_types
            and not (s.draining or s.closed)]
    if fits:
        return None
    return waiting_reason(live, account_id, task_type, selectors)


def lookup_params(spec: LookupKind, region: str, given: dict[str, str | None],
                  role_arn: str | None) -> dict[str, Any]:
    """The task params, or HTTPException 400 naming what is missing."""
    missing = [name for name in spec.required if not given.get(name)]
    if missing:
        raise HTTPException(400, f"look-up {spec.kind} needs {', '.join(missing)}: add "
                                 f"?{missing[0]}=... (or {cli_flag(missing[0])} on the "
                                 "CLI)")
    params: dict[str, Any] = {"region": region}
    for name in (*spec.required, *spec.optional):
        if given.get(name):
            params[name] = given[name]
    if role_arn:
        params["credentials"] = {"type": "inherit", "roleArn": role_arn}
    return params


async def run_lookup(st: State, spec: NewTask) -> dict[str, Any]:
    """Submit the look-up and wait for its result; raise NoDelegate at once when nobody
    can take it, TimeoutError (after aborting it) when the answer does not come."""
    reason = unanswerable(st.hub.replicas.connected(), spec.account_id, spec.type,
                          set(spec.selectors))
    if reason is not None:
        raise NoDelegate(reason)
    task_id = st.hub.submit(spec)
    deadline = time.monotonic() + spec.timeout
    while True:
        row = st.store.get(task_id)
        if row["status"] in FINISHED:
            return dict(row)
        left = deadline - time.monotonic()
        if left <= 0:
            st.hub.abort(task_id, f"look-up timed out after {spec.timeout:g}s")
            raise TimeoutError(row["waiting_reason"] or row["status"])
        await st.signals.wait(f"task:{task_id}", left)


@router.get("/lookups/{kind}", responses=_ANSWERS)
async def lookup(kind: str, st: StateDep, request: Request,
                 region: Annotated[str, Query(min_length=1)],
                 selectors: Annotated[list[str] | None, Query()] = None,
                 account: str | None = None, role_arn: Annotated[
                     str | None, Query(alias="roleArn")] = None,
                 timeout: Annotated[float, Query(gt=0, le=MAX_LOOKUP_TIMEOUT)] = LOOKUP_TIMEOUT,
                 ) -> dict[str, Any]:
    """Answer a look-up through a delegate chosen by ``selectors`` (repeat it, or
    comma-separate). Kind-specific parameters (``cluster``, ``loadBalancer``,
    ``listener``, ``repository``, ``vpc``) are query parameters too. The answer is
    ``{kind, region, items, truncated, task_id, delegate}``."""
    spec_kind = KINDS.get(kind)
    if spec_kind is None:
        raise HTTPException(404, f"no look-up kind {kind!r}; kinds: {', '.join(KINDS)}")
    tags = sorted({t.strip() for s in selectors or [] for t in s.split(",") if t.strip()})
    try:
        account_id = account_for(st.db, account, "look-up")
    except AccountRequired as exc:
        raise HTTPException(422, str(exc)) from None
    params = lookup_params(spec_kind, region, dict(request.query_params), role_arn)
    task = NewTask(type=spec_kind.task_type, selectors=tags, params=params, secrets={},
                   context={"lookup": kind}, timeout=timeout, account_id=account_id)
    try:
        row = await run_lookup(st, task)
    except NoDelegate as exc:
        raise HTTPException(409, f"no delegate can answer look-up {kind} with selectors "
                                 f"[{', '.join(tags)}]: {exc}") from None
    except TimeoutError as exc:
        raise HTTPException(504, f"look-up {kind} got no answer within {timeout:g}s "
                                 f"({exc}); it was aborted") from None
    if row["status"] != TaskStatus.SUCCESS:
        raise HTTPException(502, f"look-up {kind} {row['status']}: {row['error']}")
    delegate = st.db.one("SELECT name FROM delegates WHERE delegate_id = ?",
                         row["delegate_id"])
    return {**loads(row["output"]), "task_id": row["task_id"],
            "delegate": delegate["name"] if delegate else None}
