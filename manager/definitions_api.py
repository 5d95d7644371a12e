"""HTTP API of the stored definitions (``delegate apply/list/show/diff/delete``) and of the
effective inputs of an execution by reference (``delegate execution render``)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException
from pydantic import BaseModel, ConfigDict, Field

from manager.accounts import AccountRequired, account_for
from manager.api import answers, require_admin, state
from manager.by_reference import account_key, effective_of, inputs_of
from manager.definition_docs import KINDS, DocumentError, parse_document
from manager.definitions import InUse, definitions_of
from manager.effective import BadReference, apply_inline
from manager.models import ExecutionFile
from manager.state import State

router = APIRouter(prefix="/api", dependencies=[Depends(require_admin)],
                   responses=answers(401), tags=["definitions"])
StateDep = Annotated[State, Depends(state)]


class ApplyRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    account_id: str | None = None
    documents: list[Any] = Field(min_length=1, max_length=1000,
                                 description="{kind, name, spec} documents")
    sources: list[str] = Field(default_factory=list,
                               description="where each document came from, for errors")
    dry_run: bool = Field(default=False, description="store nothing; answer what would "
                                                     "change, with both specs")


def _account(st: State, given: str | None) -> str:
    try:
        return account_key(account_for(st.db, given, "definition"))
    except AccountRequired as exc:
        raise HTTPException(422, str(exc)) from None


def _kind(raw: str) -> str:
    for kind in KINDS:
        if raw.lower() in (kind.lower(), kind.lower() + "s"):
            return kind
    raise HTTPException(404, f"no kind {raw!r}; kinds: {', '.join(KINDS)}")


@router.post("/definitions/apply", responses=answers(400))
async def apply_definitions(body: ApplyRequest, st: StateDep) -> dict[str, Any]:
    """Store each document that changed (a new revision); say created, updated or
    unchanged for each. All or nothing: one bad document stores none."""
    account = _account(st, body.account_id)
    docs = []
    for i, raw in enumerate(body.documents):
        where = body.sources[i] if i < len(body.sources) else f"documents[{i}]"
        try:
            docs.append(parse_document(raw, where))
        except DocumentError as exc:
            raise HTTPException(400, str(exc)) from None
    seen: set[tuple[str, str]] = set()
    for doc in docs:
        if (doc.kind, doc.name) in seen:
            raise HTTPException(400, f"{doc.kind} {doc.name} is given twice; keep one")
        seen.add((doc.kind, doc.name))
    return {"results": definitions_of(st.db).apply(account, docs, dry_run=body.dry_run)}


@router.get("/definitions")
async def list_definitions(st: StateDep, kind: str | None = None,
                           account: str | None = None) -> dict[str, Any]:
    found = definitions_of(st.db).latest(_account(st, account), _kind(kind) if kind else None)
    return {"definitions": [d.view() for d in found]}


@router.get("/definitions/{kind}/{name}", responses=answers(404))
async def show_definition(kind: str, name: str, st: StateDep, account: str | None = None,
                          revision: int | None = None) -> dict[str, Any]:
    """The current revision (or ``revision``), every revision, and the executions that
    have not finished and use it."""
    defs, acct, kind = definitions_of(st.db), _account(st, account), _kind(kind)
    found = defs.current(acct, kind, name) if revision is None else \
        defs.revision(acct, kind, name, revision)
    if found is None:
        which = "" if revision is None else f" revision {revision}"
        raise HTTPException(404, f"no {kind} {name}{which} in account {acct or '(none)'}")
    return {**found.view(), "revisions": defs.revisions(acct, kind, name),
            "used_by": defs.users(acct, kind, name)}


@router.delete("/definitions/{kind}/{name}", responses=answers(404, 409))
async def delete_definition(kind: str, name: str, st: StateDep,
                            account: str | None = None) -> dict[str, Any]:
    acct, kind = _account(st, account), _kind(kind)
    try:
        revision = definitions_of(st.db).delete(acct, kind, name)
    except InUse as exc:
        raise HTTPException(409, str(exc)) from None
    if revision is None:
        raise HTTPException(404, f"no {kind} {name} in account {acct or '(none)'}")
    return {"kind": kind, "name": name, "action": "deleted", "revision": revision}


@router.post("/executions/render", responses=answers(400))
async def render_execution(body: ExecutionFile, st: StateDep) -> dict[str, Any]:
    """The effective manifests and variables of an execution file, each with where it
    came from, computed as a submit would, without running anything."""
    try:
        account = account_for(st.db, body.account_id, "execution")
    except AccountRequired as exc:
        raise HTTPException(422, str(exc)) from None
    body = body.model_copy(update={"account_id": account})
    if not body.by_reference:
        return {"by_reference": False, "manifests": {
            k: {"value": v, "from": "execution file"} for k, v in body.manifests.items()},
            "variables": {k: {"value": v, "from": "execution file"}
                          for k, v in body.service_variables.items()}}
    try:
        eff = effective_of(st.db, body)
    except BadReference as exc:
        raise HTTPException(400, str(exc)) from None
    apply_inline(eff, body.model_dump(mode="json", by_alias=True))
    return {"by_reference": True, **eff.view()}


@router.get("/executions/{execution_id}/inputs", responses=answers(404))
async def execution_inputs(execution_id: str, st: StateDep) -> dict[str, Any]:
    """The definitions' revisions and the effective inputs an execution by reference
    ran with."""
    found = inputs_of(st.db, execution_id)
    if found is None:
        raise HTTPException(404, f"execution {execution_id} names no stored definitions "
                                 "(or does not exist)")
    return found
