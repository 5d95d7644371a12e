"""The console's pages of stored definitions (every kind, every account) and of the
tracked instances, with a Sync now action calling what POST /api/instances/sync calls."""

from __future__ import annotations

import json
from typing import Annotated, Any

import yaml
from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response
from fastapi.responses import RedirectResponse

from manager.definition_docs import KINDS
from manager.definitions import definitions_of
from manager.instance_sync import InstanceSync
from manager.ui.web import UiRoute, check_csrf, form, page, session_id, sessions, signed_in

router = APIRouter(prefix="/ui", route_class=UiRoute, include_in_schema=False)
Text = Annotated[str | None, Query(max_length=200)]
Session = Annotated[str, Depends(signed_in)]


def _definitions(request: Request, kind: str | None) -> list[dict[str, Any]]:
    db = request.app.state.manager.db
    rows = db.all(
        "SELECT d.account_id, d.kind, d.name, d.revision, d.created_at FROM definitions d "
        "WHERE (? IS NULL OR d.kind = ?) AND d.deleted = 0 AND d.revision = (SELECT "
        "MAX(revision) FROM definitions x WHERE x.account_id = d.account_id AND x.kind = "
        "d.kind AND x.name = d.name) ORDER BY d.kind, d.name, d.account_id", kind, kind)
    return [dict(r) for r in rows]


@router.get("/definitions")
async def definitions(request: Request, kind: Text = None) -> Response:
    session_id(request)  # before reading anything
    kind = kind if kind in KINDS else None
    return page(request, "definitions.html", definitions=_definitions(request, kind),
                kinds=KINDS, kind=kind or "")


def _account(request: Request, kind: str, name: str, given: str | None) -> str:
    if given is not None:
        return given
    rows = request.app.state.manager.db.all(
        "SELECT DISTINCT account_id FROM definitions WHERE kind = ? AND name = ? "
        "ORDER BY account_id", kind, name)
    if len(rows) > 1:
        raise HTTPException(400, f"{kind} {name} is stored for several accounts ("
                                 f"{', '.join(r['account_id'] for r in rows)}): add "
                                 "?account=ID to say which")
    return str(rows[0]["account_id"]) if rows else ""


@router.get("/definitions/{kind}/{name}")
async def definition(request: Request, kind: str, name: str, account: Text = None
                     ) -> Response:
    session_id(request)  # before reading anything
    if kind not in KINDS:
        raise HTTPException(404, f"no kind {kind!r}; kinds: {', '.join(KINDS)}")
    acct = _account(request, kind, name, account)
    defs = definitions_of(request.app.state.manager.db)
    found = defs.current(acct, kind, name)
    if found is None:
        raise HTTPException(404, f"no {kind} {name} in account {acct or '(none)'}")
    used = request.app.state.manager.db.all(
        "SELECT u.execution_id, u.revision, e.name, e.status, e.created_at FROM "
        "execution_definitions u JOIN executions e ON e.execution_id = u.execution_id "
        "WHERE u.account_id = ? AND u.kind = ? AND u.name = ? "
        "ORDER BY e.created_at DESC, e.execution_id DESC LIMIT 200", acct, kind, name)
    # Through JSON first: YAML of plain data only, never a Python tag.
    text = yaml.safe_dump(json.loads(json.dumps(found.spec)), sort_keys=True)
    return page(request, "definition.html", d=found, account=acct, spec_yaml=text,
                revisions=defs.revisions(acct, kind, name), used=[dict(r) for r in used])


def _sync(request: Request) -> InstanceSync:
    sync: InstanceSync = request.app.state.instance_sync
    return sync


@router.get("/instances")
async def instances(request: Request) -> Response:
    session_id(request)  # before reading anything
    sync = _sync(request)
    return page(request, "instances.html", services=sync.store.services(),
                interval=sync.interval)


@router.post("/instances/sync")
async def sync_now(request: Request, sid: Session) -> Response:
    check_csrf(request, sid, (await form(request)).get("csrf"))
    sent = _sync(request).sync()
    unreachable = len(sent["unreachable"])
    sessions(request).set_flash(sid, (
        f"Sync requested: {len(sent['submitted'])} task(s) sent"
        + (f", {unreachable} cluster(s) no delegate can reach" if unreachable else "")
        + ". Reload in a moment to see the answers."))
    return RedirectResponse("/ui/instances", status_code=303)
