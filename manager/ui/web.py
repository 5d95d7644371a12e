"""What every console route shares: the templates (autoescaped: log lines and manifest
values are untrusted text), the security headers every answer carries, the session and
CSRF checks, and the formatting filters."""

from __future__ import annotations

import json
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime
from typing import Any

from fastapi import HTTPException, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse
from fastapi.routing import APIRoute
from jinja2 import Environment, PackageLoader, StrictUndefined

from manager.state import State
from manager.ui.session import COOKIE, Sessions
from wire.durations import format_duration

# No inline script or style anywhere: every script and stylesheet is a file under
# /ui/static/, so an injected <script> in a log line could not run even if it escaped.
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
       "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
HEADERS = {"Content-Security-Policy": CSP, "X-Content-Type-Options": "nosniff",
           "Referrer-Policy": "no-referrer", "X-Frame-Options": "DENY",
           "Cache-Control": "no-store"}
FINISHED = {"SUCCESS", "FAILED", "ABORTED", "TIMED_OUT", "LOST", "ROLLED_BACK", "SKIPPED"}


class UiRoute(APIRoute):
    """A route whose every answer carries the console's security headers."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        inner = super().get_route_handler()

        async def handler(request: Request) -> Response:
            try:
                response = await inner(request)
            except SignInRequired:
                response = sign_in_first(request)
            except HTTPException as exc:  # answered here, so it gets the headers too
                response = refusal(request, exc.status_code, str(exc.detail))
            except RequestValidationError as exc:
                where = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}"
                                  for e in exc.errors())
                response = refusal(request, 422, f"bad request: {where}")
            for name, value in HEADERS.items():
                response.headers.setdefault(name, value)
            return response

        return handler


def refusal(request: Request, status: int, detail: str) -> Response:
    """An error as a page for a browser's navigation, as JSON for the script."""
    if "text/html" in request.headers.get("accept", ""):
        body = templates.get_template("error.html").render(
            status=status, detail=detail, csrf="", flash=None, path=request.url.path)
        return HTMLResponse(body, status_code=status)
    return JSONResponse({"detail": detail}, status_code=status)


def when(value: Any) -> str:
    """An epoch float or an ISO timestamp as UTC wall time."""
    if value is None or value == "":
        return ""
    try:
        at = (datetime.fromtimestamp(float(value), UTC) if isinstance(value, int | float)
              else datetime.fromisoformat(str(value)).astimezone(UTC))
    except (ValueError, OverflowError):
        return str(value)
    return at.strftime("%Y-%m-%d %H:%M:%S UTC")


def _seconds(value: Any) -> float | None:
    if value is None or value == "":
        return None
    if isinstance(value, int | float):
        return float(value)
    try:
        return datetime.fromisoformat(str(value)).timestamp()
    except ValueError:
        return None


def took(started: Any, ended: Any) -> str:
    start, end = _seconds(started), _seconds(ended)
    if start is None:
        return ""
    if end is None:
        return "running"
    return format_duration(max(end - start, 0.0))


def shown(value: Any) -> str:
    """An output value as text: strings as they are, the rest as JSON."""
    return value if isinstance(value, str) else json.dumps(value, indent=1, sort_keys=True)


templates = Environment(loader=PackageLoader("manager.ui", "templates"), autoescape=True,
                        undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)
templates.filters.update(when=when, shown=shown)
templates.globals.update(took=took, FINISHED=FINISHED)


def state(request: Request) -> State:
    st: State = request.app.state.manager
    return st


def sessions(request: Request) -> Sessions:
    """The app's console sessions, made on first use (keyed to its admin token)."""
    found: Sessions | None = getattr(request.app.state, "console_sessions", None)
    if found is None or found.admin_token != state(request).admin_token:
        found = Sessions(state(request).admin_token, state(request).db)
        request.app.state.console_sessions = found
    return found


class SignInRequired(Exception):
    """No valid session: pages redirect to the sign-in page, data answers 401."""


def session_id(request: Request) -> str:
    sid = sessions(request).session_id(request.cookies.get(COOKIE))
    if sid is None:
        raise SignInRequired()
    return sid


def signed_in(request: Request) -> str:
    """Dependency for data and actions: the session id, or 401."""
    try:
        return session_id(request)
    except SignInRequired:
        raise HTTPException(401, "sign in to the console first (/ui/signin)") from None


def check_csrf(request: Request, sid: str, given: str | None) -> None:
    if not sessions(request).csrf_ok(sid, given):
        raise HTTPException(403, "the form's CSRF token is missing or stale: reload the "
                                 "page and try again")


def sign_in_first(request: Request) -> Response:
    """No session: a page redirects to sign in (and back), data answers 401."""
    if "text/html" not in request.headers.get("accept", "") or request.method != "GET":
        return JSONResponse({"detail": "sign in to the console first (/ui/signin)"},
                            status_code=401)
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse(f"/ui/signin?next={_quote(target)}", status_code=303)


def page(request: Request, name: str, **context: Any) -> Response:
    """A full page for a signed-in user (handlers call ``session_id`` before reading)."""
    sid = session_id(request)
    flash = sessions(request).pop_flash(sid)
    body = templates.get_template(name).render(
        csrf=sessions(request).csrf(sid), flash=flash, path=request.url.path, **context)
    return HTMLResponse(body)


def fragment(name: str, **context: Any) -> HTMLResponse:
    return HTMLResponse(templates.get_template(name).render(**context))


def _quote(text: str) -> str:
    from urllib.parse import quote

    return quote(text, safe="")


MAX_FORM_BYTES = 16 * 1024


async def form(request: Request) -> dict[str, str]:
    """The console's forms are small and url-encoded: read them with the stdlib, one
    value per field (no multipart parser needed)."""
    from urllib.parse import parse_qs

    body = await request.body()
    if len(body) > MAX_FORM_BYTES:
        raise HTTPException(413, f"form too large: at most {MAX_FORM_BYTES} bytes")
    fields = parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True)
    return {k: v[0] for k, v in fields.items()}
