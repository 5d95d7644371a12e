"""The console's pages: sign-in, executions, an execution, tasks, a task, delegates.
Each list has a rows fragment the page's script fetches again to stay live."""

from __future__ import annotations

import secrets
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse

from manager import api
from manager.keys import tokens_equal
from manager.ui import queries
from manager.ui.session import COOKIE, PRE_COOKIE, SESSION_SECONDS
from manager.ui.steps import cards, failure
from manager.ui.web import (
    UiRoute,
    form,
    fragment,
    page,
    session_id,
    sessions,
    state,
    templates,
)

router = APIRouter(prefix="/ui", route_class=UiRoute, include_in_schema=False)
Text = Annotated[str | None, Query(max_length=200)]


def _safe_next(target: str | None) -> str:
    # Only a path inside the console: never an open redirect to another site.
    if target and target.startswith("/ui/") and not target.startswith("//"):
        return target
    return "/ui/executions"


def _signed_in_answer(request: Request, target: str | None) -> Response:
    answer = RedirectResponse(_safe_next(target), status_code=303)
    answer.set_cookie(COOKIE, sessions(request).issue(), max_age=int(SESSION_SECONDS),
                      httponly=True, samesite="strict", path="/ui",
                      secure=request.url.scheme == "https")
    answer.delete_cookie(PRE_COOKIE, path="/ui")
    return answer


@router.get("/")
async def home() -> Response:
    return RedirectResponse("/ui/executions", status_code=303)


@router.get("/signin")
async def signin_form(request: Request, next: Text = None, error: str = "") -> Response:
    # Sign-in has no session yet: its CSRF token is a random cookie the form repeats.
    pre = request.cookies.get(PRE_COOKIE) or secrets.token_urlsafe(18)
    body = templates.get_template("signin.html").render(
        csrf=pre, next=_safe_next(next), error=error, flash=None, path="/ui/signin")
    answer = HTMLResponse(body, status_code=401 if error else 200)
    answer.set_cookie(PRE_COOKIE, pre, max_age=600, httponly=True, samesite="strict",
                      path="/ui")
    return answer


@router.post("/signin")
async def signin(request: Request) -> Response:
    fields = await form(request)
    token, csrf, next = fields.get("token", ""), fields.get("csrf", ""), fields.get("next")
    pre = request.cookies.get(PRE_COOKIE)
    if not pre or not tokens_equal(csrf, pre):
        return await signin_form(request, next, "The sign-in form expired: try again.")
    if not tokens_equal(token.strip(), state(request).admin_token):
        return await signin_form(request, next, "That is not the manager's admin token.")
    return _signed_in_answer(request, next)


@router.get("/signin/link")
async def signin_link(request: Request, token: Annotated[str, Query(max_length=200)]
                      ) -> Response:
    """A one-time link (``delegate demo --keep`` prints one) exchanged for a session."""
    if not sessions(request).use_link(token):
        return await signin_form(request, None, "That sign-in link was used already or "
                                                "has expired: sign in with the admin token.")
    return _signed_in_answer(request, "/ui/executions")


@router.post("/signout")
async def signout(request: Request) -> Response:
    csrf = (await form(request)).get("csrf")
    sid = sessions(request).session_id(request.cookies.get(COOKIE))
    if sid is not None and sessions(request).csrf_ok(sid, csrf):
        sessions(request).end(sid)
    answer = RedirectResponse("/ui/signin", status_code=303)
    answer.delete_cookie(COOKIE, path="/ui")
    return answer


def _list_context(request: Request, status: str | None, service: str | None
                  ) -> dict[str, Any]:
    st = state(request)
    return {"executions": queries.executions(st, status or None, service or None),
            "status": status or "", "service": service or "",
            "services": queries.services(st)}


@router.get("/executions")
async def executions(request: Request, status: Text = None, service: Text = None) -> Response:
    session_id(request)  # before reading anything
    return page(request, "executions.html", **_list_context(request, status, service))


@router.get("/executions/rows")
async def execution_rows(request: Request, status: Text = None,
                         service: Text = None) -> Response:
    session_id(request)
    return fragment("execution_rows.html", **_list_context(request, status, service))


def execution_context(request: Request, execution_id: str,
                      with_log: bool = True) -> dict[str, Any]:
    st = state(request)
    view = st.executions.view(execution_id)
    if view is None:
        raise HTTPException(404, f"no execution {execution_id}")
    steps = cards(st, view, with_log)
    return {"view": view, "steps": steps, "failure": failure(st, view, steps)}


@router.get("/executions/{execution_id}")
async def execution(request: Request, execution_id: str, q: Text = None) -> Response:
    session_id(request)  # before reading anything
    st = state(request)
    context = execution_context(request, execution_id)
    task_ids = [s["task_id"] for s in context["steps"] if s["task_id"]]
    found = queries.search(st, task_ids, q or "") if q else []
    names = {s["task_id"]: s["step_id"] for s in context["steps"]}
    return page(request, "execution.html", q=q or "", found=found, step_names=names,
                **context)


@router.get("/tasks")
async def tasks(request: Request, every: bool = False) -> Response:
    session_id(request)  # before reading anything
    return page(request, "tasks.html", tasks=_tasks(request, every), every=every)


@router.get("/tasks/rows")
async def task_rows(request: Request, every: bool = False) -> Response:
    session_id(request)
    return fragment("task_rows.html", tasks=_tasks(request, every))


def _tasks(request: Request, every: bool) -> list[Any]:
    # One-off tasks and look-ups by default; with every=1, executions' steps too.
    return state(request).db.all(
        "SELECT t.*, d.name AS delegate_name FROM tasks t LEFT JOIN delegates d ON "
        "d.delegate_id = t.delegate_id WHERE (? = 1 OR t.execution_id IS NULL) "
        "ORDER BY t.created_at DESC, t.task_id DESC LIMIT 200", int(every))


@router.get("/tasks/{task_id}")
async def task(request: Request, task_id: str) -> Response:
    session_id(request)  # before reading anything
    st = state(request)
    row = st.store.get(task_id)
    if row is None:
        raise HTTPException(404, f"no task {task_id}")
    view = api.task_view(st, row)
    card = {"key": "task", "step_id": view["type"], "phase": "task", "type": view["type"],
            "task_id": task_id, "status": view["status"], "error": view["error"],
            "output": view["output"] or {}, "task": view, "rolls_back": None,
            "log": queries.log_page(st, task_id, None)}
    return page(request, "task.html", view=view, step=card)


@router.get("/delegates")
async def delegates(request: Request) -> Response:
    session_id(request)  # before reading anything
    return page(request, "delegates.html", delegates=await _delegates(request))


@router.get("/delegates/rows")
async def delegate_rows(request: Request) -> Response:
    session_id(request)
    return fragment("delegate_rows.html", delegates=await _delegates(request))


async def _delegates(request: Request) -> list[Any]:
    return list((await api.list_delegates(state(request)))["delegates"])
