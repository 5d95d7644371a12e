"""What the console's script calls: a task's log (the API's acked stream, followed),
earlier pages of it, its raw text, an execution's changes (the API's long poll) drawn as
HTML, the Abort and Roll back actions (the API's own handlers, behind the session and
its CSRF token), the static files, and the admin API's one-time sign-in links."""

from __future__ import annotations

from importlib import resources
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response
from fastapi.responses import JSONResponse, PlainTextResponse, RedirectResponse

from manager import api
from manager.models import AbortRequest, RollbackRequest
from manager.ui import queries
from manager.ui.pages import execution_context
from manager.ui.session import LINK_SECONDS
from manager.ui.web import UiRoute, check_csrf, form, sessions, signed_in, state, templates

router = APIRouter(prefix="/ui", route_class=UiRoute, include_in_schema=False)
Session = Annotated[str, Depends(signed_in)]

_STATIC = {"console.js": "text/javascript", "console.css": "text/css",
           "favicon.svg": "image/svg+xml"}


@router.get("/static/{name}")
async def static(name: str) -> Response:
    if name not in _STATIC:
        raise HTTPException(404, f"no static file {name}")
    body = resources.files("manager.ui").joinpath("static", name).read_bytes()
    return Response(body, media_type=_STATIC[name],
                    headers={"Cache-Control": "public, max-age=300"})


@router.get("/tasks/{task_id}/logs")
async def task_logs(request: Request, _: Session, task_id: str,
                    after: Annotated[int, Query(ge=0, le=api.MAX_SEQ)] = 0,
                    follow: bool = False) -> Response:
    """The API's log stream of the task, as it serves it (NDJSON, entry ids as cursor)."""
    return await api.task_logs(task_id, state(request), after, follow)


@router.get("/tasks/{task_id}/page")
async def log_page(request: Request, _: Session, task_id: str,
                   before: Annotated[int, Query(ge=0, le=api.MAX_SEQ)]) -> dict[str, Any]:
    if state(request).store.get(task_id) is None:
        raise HTTPException(404, f"no task {task_id}")
    return queries.log_page(state(request), task_id, before)


@router.get("/tasks/{task_id}/raw")
async def raw_log(request: Request, _: Session, task_id: str) -> Response:
    if state(request).store.get(task_id) is None:
        raise HTTPException(404, f"no task {task_id}")
    return PlainTextResponse(queries.raw_log(state(request), task_id), headers={
        "Content-Disposition": f'attachment; filename="{task_id}.log"'})


@router.get("/executions/{execution_id}/live")
async def execution_live(request: Request, sid: Session, execution_id: str,
                         known: Annotated[str, Query(max_length=64)] = "",
                         wait: Annotated[float, Query(ge=0, le=30)] = 20) -> Response:
    """When the execution changes from ``known`` (or after ``wait`` s): its header and
    each step's card, drawn as the page draws them."""
    await api.get_execution(execution_id, state(request), wait if known else 0, known)
    # The cards without their logs: the page keeps the log panes it follows.
    context = execution_context(request, execution_id, with_log=False)
    head = templates.get_template("execution_head.html").render(
        csrf=sessions(request).csrf(sid), **context)
    step = templates.get_template("step.html")
    return JSONResponse({
        "version": context["view"]["version"], "status": context["view"]["status"],
        "head": head,
        "steps": [{"key": s["key"], "task_id": s["task_id"], "status": s["status"],
                   "html": step.render(step=s)} for s in context["steps"]]})


def _back(execution_id: str) -> Response:
    return RedirectResponse(f"/ui/executions/{execution_id}", status_code=303)


@router.post("/executions/{execution_id}/abort")
async def abort(request: Request, sid: Session, execution_id: str) -> Response:
    check_csrf(request, sid, (await form(request)).get("csrf"))
    await api.abort_execution(execution_id, state(request),
                              AbortRequest(reason="aborted from the web console"))
    sessions(request).set_flash(sid, "Abort requested: the running step is being stopped.")
    return _back(execution_id)


@router.post("/executions/{execution_id}/rollback")
async def rollback(request: Request, sid: Session, execution_id: str) -> Response:
    check_csrf(request, sid, (await form(request)).get("csrf"))
    try:
        await api.rollback_execution(execution_id, state(request), RollbackRequest())
        sessions(request).set_flash(sid, "Rollback requested.")
    except HTTPException as exc:
        if exc.status_code != 409:
            raise
        sessions(request).set_flash(sid, f"Rollback refused: {exc.detail}")
    return _back(execution_id)


@router.post("/tasks/{task_id}/abort")
async def abort_task(request: Request, sid: Session, task_id: str) -> Response:
    check_csrf(request, sid, (await form(request)).get("csrf"))
    answer = await api.abort_task(task_id, state(request),
                                  AbortRequest(reason="aborted from the web console"))
    sessions(request).set_flash(sid, answer.message)
    return RedirectResponse(f"/ui/tasks/{task_id}", status_code=303)


links = APIRouter(prefix="/api/ui", dependencies=[Depends(api.require_admin)],
                  tags=["console"])


@links.post("/sign-in-links", status_code=201)
async def sign_in_link(request: Request) -> dict[str, Any]:
    """A one-time console sign-in link, valid for 10 minutes (for `delegate demo --keep`
    and scripts that open the console for someone)."""
    token = sessions(request).new_link()
    return {"path": f"/ui/signin/link?token={token}", "expires_in": int(LINK_SECONDS)}
