"""The manager's HTTP API as the client commands use it: where the manager is, how to
trust it, who we are (``Client``); the options every client command shares
(``client_options``); output (``emit``); and following a task or an execution to its end
(``follow_task``, ``follow_execution``, also used by the demo). The commands themselves
are in ``cli/*_cmd.py``."""

from __future__ import annotations

import functools
import json
import os
import ssl
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import click
import httpx

from cli.exitcodes import (
    AuthError,
    InputError,
    Refused,
    Unreachable,
    Untrusted,
    use_json_errors,
)
from cli.groups import VerbGroup
from manager.render import LogRenderer
from wire.urls import check_manager_url

F = TypeVar("F", bound=Callable[..., Any])

FINISHED = ("SUCCESS", "FAILED", "ABORTED", "TIMED_OUT", "LOST")
EXECUTION_FINISHED = ("SUCCESS", "FAILED", "ABORTED", "ROLLED_BACK")

ENVIRONMENT = """\b
Environment:
  MANAGER_HOST_AND_PORT  the manager's URL, with http:// or https:// (or --manager)
  MANAGER_ADMIN_TOKEN    the manager's admin token (never on the command line)
  MANAGER_CA_BUNDLE      CA bundle to verify an https manager (or --ca-bundle)
  ACCOUNT_ID             your account at the manager (or --account)
Exit codes: see 'delegate --help'."""


class ClientCommand(click.Command):
    """A command that talks to a manager: its help ends with what it reads."""

    def __init__(self, *args: Any, **kw: Any) -> None:
        super().__init__(*args, **kw)
        self.epilog = "\n\n".join(filter(None, (self.epilog, ENVIRONMENT)))


class ClientGroup(VerbGroup):
    command_class = ClientCommand


def _json_errors(ctx: click.Context, param: click.Parameter, value: str) -> str:
    use_json_errors(value == "json")
    return value


def option_output(f: F) -> F:
    return click.option("--output", "-o", type=click.Choice(["table", "json"]),
                        default="table", show_default=True, is_eager=True,
                        callback=_json_errors,
                        help="json: the manager's answer, ISO-8601 times, errors as JSON "
                             "on stderr.")(f)


def client_options(f: F) -> F:
    """--manager, --ca-bundle, --account and -o; the command gets ``client`` (a Client)
    and ``output``."""
    return client_options_with(f, make=Client)


def client_options_with(f: F, make: Callable[..., Client]) -> F:
    @click.option("--manager", "manager_url", metavar="URL", envvar="MANAGER_HOST_AND_PORT",
                  show_envvar=True, help="The manager, e.g. https://manager.example.com.")
    @click.option("--ca-bundle", type=click.Path(exists=True, dir_okay=False, path_type=Path),
                  envvar="MANAGER_CA_BUNDLE", show_envvar=True,
                  help="CA bundle (PEM) that signed the manager's certificate.")
    @click.option("--account", metavar="ID", envvar="ACCOUNT_ID", show_envvar=True,
                  help="Your account at the manager.")
    @option_output
    @functools.wraps(f)
    def wrapper(manager_url: str | None, ca_bundle: Path | None, account: str | None,
                **kw: Any) -> Any:
        return f(client=make(manager_url, ca_bundle=ca_bundle, account=account), **kw)

    return wrapper  # type: ignore[return-value]


def manager_base(url: str | None) -> str:
    if not url:
        raise InputError("no manager: pass --manager URL or set MANAGER_HOST_AND_PORT "
                         "(e.g. http://127.0.0.1:8080 on the manager's own host)")
    try:
        return check_manager_url(url)
    except ValueError as exc:
        raise InputError(f"--manager / MANAGER_HOST_AND_PORT: {exc}") from None


def _verify(ca_bundle: Path | None) -> ssl.SSLContext | bool:
    if ca_bundle is None:
        return True
    try:
        return ssl.create_default_context(cafile=str(ca_bundle))
    except (OSError, ssl.SSLError) as exc:
        raise InputError(f"--ca-bundle / MANAGER_CA_BUNDLE {ca_bundle}: not a readable PEM "
                         f"CA bundle ({exc})") from None


class Client:
    """One manager, its admin token (``MANAGER_ADMIN_TOKEN``) and our account. Every
    failure is raised as a ``CliError`` with the code of ``cli/exitcodes.py``."""

    def __init__(self, url: str | None, timeout: float = 30.0, *,
                 ca_bundle: Path | None = None, account: str | None = None,
                 admin_token: str | None = None) -> None:
        self.base = manager_base(url or os.environ.get("MANAGER_HOST_AND_PORT"))
        if ca_bundle is None and os.environ.get("MANAGER_CA_BUNDLE"):
            ca_bundle = Path(os.environ["MANAGER_CA_BUNDLE"])
        self.account = account or None
        self.token = (admin_token or os.environ.get("MANAGER_ADMIN_TOKEN", "")).strip()
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        self.http = httpx.Client(base_url=self.base, timeout=timeout,
                                 verify=_verify(ca_bundle), headers=headers)

    def require_account(self) -> str:
        if not self.account:
            raise InputError("no account: pass --account ID or set ACCOUNT_ID")
        return self.account

    def account_params(self) -> dict[str, str]:
        return {"account": self.account} if self.account else {}

    def check(self, r: httpx.Response) -> None:
        if r.status_code < 400:
            return
        if r.status_code in (401, 403):
            raise AuthError(self._auth_message(r.status_code))
        r.read()
        detail = _detail(r)
        if r.status_code == 409:
            raise Refused(detail)
        if r.status_code >= 500:
            raise Unreachable(f"the manager at {self.base} failed ({r.status_code}): {detail}")
        raise InputError(f"manager refused ({r.status_code}): {detail}")

    def _auth_message(self, status: int) -> str:
        if self.token:
            return (f"the manager at {self.base} refused the admin token in "
                    f"MANAGER_ADMIN_TOKEN ({status}): set it to the manager's admin token "
                    "(the one it was started with, or the one in the file next to its "
                    "database, manager.db.admin-token)")
        return (f"the manager at {self.base} wants its admin token: set "
                "MANAGER_ADMIN_TOKEN (on the manager's host it is in the file next to its "
                "database, manager.db.admin-token, unless it was started with one)")

    def unreachable(self, exc: httpx.TransportError) -> Unreachable:
        if "CERTIFICATE_VERIFY_FAILED" in str(exc):
            return Untrusted(f"the manager's TLS certificate at {self.base} is not trusted: "
                               "pass --ca-bundle FILE or set MANAGER_CA_BUNDLE to the CA "
                               "bundle (PEM) that signed it")
        return Unreachable(f"manager unreachable at {self.base}: {exc or type(exc).__name__}; "
                           "check --manager / MANAGER_HOST_AND_PORT and that it is running")

    def request(self, method: str, path: str, **kw: Any) -> Any:
        try:
            r = self.http.request(method, path, **kw)
        except httpx.TransportError as exc:
            raise self.unreachable(exc) from None
        self.check(r)
        if r.status_code == 204:
            return None
        ctype = r.headers.get("content-type", "")
        return r.json() if ctype.startswith("application/json") else r.content

    def stream_lines(self, path: str, **params: Any) -> Iterator[dict[str, Any]]:
        try:
            with self.http.stream("GET", path, params=params, timeout=None) as r:
                self.check(r)
                for line in r.iter_lines():
                    if line:
                        yield json.loads(line)
        except httpx.TransportError as exc:
            raise self.unreachable(exc) from None


def _detail(r: httpx.Response) -> str:
    try:
        detail = r.json().get("detail")
    except (ValueError, AttributeError):
        return r.text.strip()[:500]
    if isinstance(detail, list):  # a validation error: name each field
        return "; ".join(
            f"{'.'.join(str(p) for p in d.get('loc', [])[1:])}: {d.get('msg')}"
            for d in detail)
    return str(detail)


# --------------------------------------------------------------------------- output

TIME_KEYS = ("last_heartbeat", "ts")


def iso(value: float) -> str:
    return datetime.fromtimestamp(value, UTC).isoformat().replace("+00:00", "Z")


def with_iso_times(body: Any) -> Any:
    """The manager's epoch seconds as ISO-8601 UTC, for scripts (``-o json``)."""
    if isinstance(body, dict):
        return {k: iso(v) if (k.endswith("_at") or k in TIME_KEYS)
                and isinstance(v, int | float) and not isinstance(v, bool)
                else with_iso_times(v) for k, v in body.items()}
    if isinstance(body, list):
        return [with_iso_times(v) for v in body]
    return body


def emit(body: Any, output: str, table: tuple[list[dict[str, Any]], list[str]] | None = None
         ) -> None:
    if output == "json" or table is None:
        click.echo(json.dumps(with_iso_times(body), indent=2, default=str))
        return
    rows, cols = table
    cells = [[cell(r.get(c)) for c in cols] for r in rows]
    widths = [max([len(c.upper())] + [len(row[i]) for row in cells]) for i, c in
              enumerate(cols)]
    click.echo("  ".join(c.upper().ljust(w) for c, w in zip(cols, widths, strict=True)))
    for row in cells:
        click.echo("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)))


def fields(body: dict[str, Any], *keys: str) -> None:
    """One ``key: value`` line per key, for the `show` commands."""
    for key in keys:
        click.echo(f"{key + ':':16} {cell(body.get(key))}")


def cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float) and value > 1e9:
        return datetime.fromtimestamp(value, UTC).strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, list):
        return ",".join(str(v) for v in value)
    return str(value)


# --------------------------------------------------------------------------- following


def follow_task(client: Client, task_id: str, show_logs: bool,
                renderer: LogRenderer | None = None) -> None:
    """Stream the task's log (printed when ``show_logs``) until it finishes."""
    renderer = renderer or LogRenderer(click.echo)
    after = 0
    while True:
        for entry in client.stream_lines(f"/api/tasks/{task_id}/logs", after=after,
                                         follow="true"):
            if "id" in entry:
                after = entry["id"]
            if show_logs:
                renderer.entry(entry)
        task = client.request("GET", f"/api/tasks/{task_id}")
        if task["status"] in FINISHED:
            return


def follow_execution(client: Client, eid: str, show_logs: bool) -> dict[str, Any]:
    """Follow every step's task in turn until the execution finishes; its last view."""
    shown: set[str] = set()
    renderer = LogRenderer(click.echo)
    view = client.request("GET", f"/api/executions/{eid}")
    last_reason = None
    while True:
        for run in view["runs"]:
            key = run["task_id"] or f"skipped:{run['step_id']}"
            if key not in shown:
                shown.add(key)
                _follow_run(client, run, show_logs, renderer)
        if view["status"] in EXECUTION_FINISHED:
            return dict(view)
        if show_logs and view.get("waiting_reason") and view["waiting_reason"] != last_reason:
            click.echo(f"waiting: {view['waiting_reason']}")
        last_reason = view.get("waiting_reason")
        view = client.request("GET", f"/api/executions/{eid}",
                              params={"wait": 15, "known": view["version"]})


def _follow_run(client: Client, run: dict[str, Any], show_logs: bool,
                renderer: LogRenderer) -> None:
    if run["task_id"] is None:  # a SKIPPED rollback step: no task, its error says why
        if show_logs:
            click.echo(f"\n##### Rollback step {run['step_id']}: {run['status']} - "
                       f"{run.get('error')}")
        return
    if show_logs:
        label = "Rollback step" if run["phase"] == "rollback" else "Step"
        click.echo(f"\n##### {label} {run['step_id']} (task {run['task_id']})")
    follow_task(client, run["task_id"], show_logs, renderer)
    if show_logs:
        t = client.request("GET", f"/api/tasks/{run['task_id']}")
        click.echo(f"##### {run['step_id']}: {t['status']}"
                   + (f" - {t['error']}" if t.get("error") else ""))
