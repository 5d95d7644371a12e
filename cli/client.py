"""CLI commands that talk to a manager over HTTP: submit, task, execution, files,
delegates. The manager is ``--manager`` or ``MANAGER_HOST_AND_PORT``; the admin token
is ``MANAGER_ADMIN_TOKEN``. Tables for people, ``--output json`` for scripts."""

from __future__ import annotations

import json
import os
import ssl
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import click
import httpx
import yaml

from manager.render import LogRenderer

F = TypeVar("F", bound=Callable[..., Any])

EXIT_CODES = {"SUCCESS": 0, "FAILED": 1, "ABORTED": 3, "TIMED_OUT": 4, "LOST": 5,
              "ROLLED_BACK": 1}
FINISHED = ("SUCCESS", "FAILED", "ABORTED", "TIMED_OUT", "LOST")
EXECUTION_FINISHED = ("SUCCESS", "FAILED", "ABORTED", "ROLLED_BACK")


def option_manager(f: F) -> F:
    return click.option("--manager", "manager_url", metavar="URL",
                        help="Manager URL (default: $MANAGER_HOST_AND_PORT).")(f)


def option_output(f: F) -> F:
    return click.option("--output", "-o", type=click.Choice(["table", "json"]),
                        default="table", show_default=True)(f)


class Client:
    def __init__(self, url: str | None, timeout: float = 30.0) -> None:
        base = url or os.environ.get("MANAGER_HOST_AND_PORT")
        if not base:
            raise click.ClickException("no manager: pass --manager URL or set "
                                       "MANAGER_HOST_AND_PORT")
        if "://" not in base:
            base = "http://" + base
        self.base = base.rstrip("/")
        token = os.environ.get("MANAGER_ADMIN_TOKEN", "")
        ca_bundle = os.environ.get("MANAGER_CA_BUNDLE")
        verify: Any = ssl.create_default_context(cafile=ca_bundle) if ca_bundle else True
        self.http = httpx.Client(base_url=self.base, timeout=timeout, verify=verify,
                                 headers={"Authorization": f"Bearer {token}"} if token else {})

    def _check(self, r: httpx.Response) -> None:
        if r.status_code == 401:
            raise click.ClickException("admin token refused: set MANAGER_ADMIN_TOKEN")
        if r.status_code >= 400:
            try:
                detail = r.json().get("detail")
            except ValueError:
                detail = r.text
            if isinstance(detail, list):  # a validation error: name each field
                detail = "; ".join(
                    f"{'.'.join(str(p) for p in d.get('loc', [])[1:])}: {d.get('msg')}"
                    for d in detail)
            raise click.ClickException(f"manager refused ({r.status_code}): {detail}")

    def request(self, method: str, path: str, **kw: Any) -> Any:
        try:
            r = self.http.request(method, path, **kw)
        except httpx.TransportError as exc:
            raise click.ClickException(f"manager unreachable at {self.base}: {exc}") from None
        self._check(r)
        if r.status_code == 204:
            return None
        ctype = r.headers.get("content-type", "")
        return r.json() if ctype.startswith("application/json") else r.content

    def stream_lines(self, path: str, **params: Any) -> Iterator[dict[str, Any]]:
        try:
            with self.http.stream("GET", path, params=params, timeout=None) as r:
                self._check(r)
                for line in r.iter_lines():
                    if line:
                        yield json.loads(line)
        except httpx.TransportError as exc:
            raise click.ClickException(f"manager unreachable at {self.base}: {exc}") from None


def emit(body: Any, output: str, table: tuple[list[dict[str, Any]], list[str]] | None = None
         ) -> None:
    if output == "json" or table is None:
        click.echo(json.dumps(body, indent=2, default=str))
        return
    rows, cols = table
    cells = [[_cell(r.get(c)) for c in cols] for r in rows]
    widths = [max([len(c.upper())] + [len(row[i]) for row in cells]) for i, c in
              enumerate(cols)]
    click.echo("  ".join(c.upper().ljust(w) for c, w in zip(cols, widths, strict=True)))
    for row in cells:
        click.echo("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)))


def _fields(body: dict[str, Any], *keys: str) -> None:
    """One ``key: value`` line per key, for the `show` commands."""
    for key in keys:
        click.echo(f"{key + ':':16} {_cell(body.get(key))}")


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float) and value > 1e9:
        return datetime.fromtimestamp(value, UTC).strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, list):
        return ",".join(str(v) for v in value)
    return str(value)


def _load_file(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text()
    except OSError as exc:
        raise click.ClickException(f"{path}: {exc.strerror}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        raise click.ClickException(f"{where}: not valid YAML or JSON: "
                                   f"{getattr(exc, 'problem', exc)}") from None
    if not isinstance(data, dict):
        raise click.ClickException(f"{path}: expected a mapping with 'type' (a task) or "
                                   "'steps' (an execution)")
    return data


# --------------------------------------------------------------------------- submit


@click.command()
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--follow", "-f", is_flag=True, help="Print the logs live, unit by unit.")
@click.option("--no-wait", is_flag=True, help="Print the id and return at once.")
@option_manager
@option_output
def submit(file: Path, follow: bool, no_wait: bool, manager_url: str | None,
           output: str) -> None:
    """Submit a task file or an execution file (one with 'steps') and wait for its end.

    Exit code: 0 SUCCESS, 1 FAILED, 3 ABORTED, 4 TIMED_OUT, 5 LOST."""
    data = _load_file(file)
    client = Client(manager_url)
    if "steps" in data:
        created = client.request("POST", "/api/executions", json=data)
        eid = created["execution_id"]
        if no_wait:
            emit(created, output) if output == "json" else click.echo(eid)
            return
        if output != "json":
            click.echo(f"execution {eid} submitted ({created['status']})")
        view = _follow_execution(client, eid, show_logs=follow and output != "json")
        _finish_execution(view, output)
    else:
        created = client.request("POST", "/api/tasks", json=data)
        task_id = created["task_id"]
        if no_wait:
            emit(created, output) if output == "json" else click.echo(task_id)
            return
        if output != "json":
            click.echo(f"task {task_id} submitted ({created['status']})")
        _follow_task(client, task_id, show_logs=follow and output != "json")
        _finish_task(client.request("GET", f"/api/tasks/{task_id}"), output)


def _follow_task(client: Client, task_id: str, show_logs: bool,
                 renderer: LogRenderer | None = None) -> None:
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


def _finish_task(task: dict[str, Any], output: str) -> None:
    status = task["status"]
    if output == "json":
        emit(task, output)
    else:
        took = ""
        if task.get("started_at") and task.get("ended_at"):
            took = f" in {task['ended_at'] - task['started_at']:.1f}s"
        click.echo(f"task {task['task_id']} {status}{took}")
        if task.get("error"):
            click.echo(f"error: {task['error']}")
        for key, value in (task.get("output") or {}).items():
            click.echo(f"  {key}: {json.dumps(value) if not isinstance(value, str) else value}")
    sys.exit(EXIT_CODES.get(status, 1))


def _follow_execution(client: Client, eid: str, show_logs: bool) -> dict[str, Any]:
    shown: set[str] = set()
    renderer = LogRenderer(click.echo)
    view = client.request("GET", f"/api/executions/{eid}")
    last_reason = None
    while True:
        for run in view["runs"]:
            key = run["task_id"] or f"skipped:{run['step_id']}"
            if key in shown:
                continue
            shown.add(key)
            if run["task_id"] is None:  # a SKIPPED rollback step: no task, error says why
                if show_logs:
                    click.echo(f"\n##### Rollback step {run['step_id']}: {run['status']} - "
                               f"{run.get('error')}")
                continue
            if show_logs:
                label = "Rollback step" if run["phase"] == "rollback" else "Step"
                click.echo(f"\n##### {label} {run['step_id']} (task {run['task_id']})")
            _follow_task(client, run["task_id"], show_logs, renderer)
            if show_logs:
                t = client.request("GET", f"/api/tasks/{run['task_id']}")
                click.echo(f"##### {run['step_id']}: {t['status']}"
                           + (f" - {t['error']}" if t.get("error") else ""))
        if view["status"] in EXECUTION_FINISHED:
            return dict(view)
        if show_logs and view.get("waiting_reason") and view["waiting_reason"] != last_reason:
            click.echo(f"waiting: {view['waiting_reason']}")
        last_reason = view.get("waiting_reason")
        view = client.request("GET", f"/api/executions/{eid}",
                              params={"wait": 15, "known": view["version"]})


def _finish_execution(view: dict[str, Any], output: str) -> None:
    if output == "json":
        emit(view, output)
    else:
        click.echo(f"execution {view['execution_id']} {view['status']}")
        if view.get("error"):
            click.echo(f"error: {view['error']}")
    sys.exit(EXIT_CODES.get(view["status"], 1))


# --------------------------------------------------------------------------- task


@click.group()
def task() -> None:
    """List, show, follow and abort tasks."""


@task.command("list")
@click.option("--status", default=None, help="Only tasks in this status.")
@click.option("--limit", default=50, show_default=True)
@option_manager
@option_output
def task_list(status: str | None, limit: int, manager_url: str | None, output: str) -> None:
    params: dict[str, Any] = {"limit": limit}
    if status:
        params["status"] = status.upper()
    body = Client(manager_url).request("GET", "/api/tasks", params=params)
    emit(body, output, table=(body["tasks"], ["task_id", "type", "status", "delegate_name",
                                             "created_at", "waiting_reason"]))


@task.command("show")
@click.argument("task_id")
@option_manager
@option_output
def task_show(task_id: str, manager_url: str | None, output: str) -> None:
    body = Client(manager_url).request("GET", f"/api/tasks/{task_id}")
    if output == "json":
        emit(body, output)
        return
    _fields(body, "task_id", "type", "status", "delegate_name", "selectors", "waiting_reason",
            "error", "execution_id", "step_id")
    for unit in body["units"]:
        click.echo(f"  unit {unit['name']}: {unit['status']}")
    if body.get("output"):
        click.echo("output: " + json.dumps(body["output"], indent=2))


@task.command("logs")
@click.argument("task_id")
@click.option("--follow", "-f", is_flag=True)
@option_manager
@option_output
def task_logs(task_id: str, follow: bool, manager_url: str | None, output: str) -> None:
    client = Client(manager_url)
    renderer = LogRenderer(click.echo)
    for entry in client.stream_lines(f"/api/tasks/{task_id}/logs",
                                     follow="true" if follow else "false"):
        if output == "json":
            click.echo(json.dumps(entry))
        else:
            renderer.entry(entry)


@task.command("abort")
@click.argument("task_id")
@click.option("--reason", default="aborted by user", show_default=True)
@option_manager
@option_output
def task_abort(task_id: str, reason: str, manager_url: str | None, output: str) -> None:
    body = Client(manager_url).request("POST", f"/api/tasks/{task_id}/abort",
                                       json={"reason": reason})
    emit(body, output) if output == "json" else click.echo(f"task {task_id}: {body['status']}")


# --------------------------------------------------------------------------- execution


@click.group()
def execution() -> None:
    """List, show, abort and roll back executions."""


@execution.command("list")
@click.option("--status", default=None)
@click.option("--limit", default=50, show_default=True)
@option_manager
@option_output
def execution_list(status: str | None, limit: int, manager_url: str | None,
                   output: str) -> None:
    params: dict[str, Any] = {"limit": limit}
    if status:
        params["status"] = status.upper()
    body = Client(manager_url).request("GET", "/api/executions", params=params)
    emit(body, output, table=(body["executions"], ["execution_id", "name", "service",
                                                   "status", "created_at",
                                                   "waiting_reason"]))


@execution.command("show")
@click.argument("execution_id")
@option_manager
@option_output
def execution_show(execution_id: str, manager_url: str | None, output: str) -> None:
    body = Client(manager_url).request("GET", f"/api/executions/{execution_id}")
    if output == "json":
        emit(body, output)
        return
    _fields(body, "execution_id", "name", "service", "status", "phase", "waiting_reason",
            "error")
    emit(body, output, table=(body["runs"], ["phase", "step_id", "rolls_back", "task_id",
                                             "status", "error"]))


@execution.command("abort")
@click.argument("execution_id")
@click.option("--reason", default="aborted by user", show_default=True)
@option_manager
@option_output
def execution_abort(execution_id: str, reason: str, manager_url: str | None,
                    output: str) -> None:
    """Stop without rolling back."""
    body = Client(manager_url).request("POST", f"/api/executions/{execution_id}/abort",
                                       json={"reason": reason})
    emit(body, output) if output == "json" else \
        click.echo(f"execution {execution_id}: {body['status']}")


@execution.command("rollback")
@click.argument("execution_id")
@click.option("--follow", "-f", is_flag=True)
@option_manager
@option_output
def execution_rollback(execution_id: str, follow: bool, manager_url: str | None,
                       output: str) -> None:
    """Roll back on request: interrupt the running step, then run the rollback steps of
    every step that started, newest first."""
    client = Client(manager_url)
    body = client.request("POST", f"/api/executions/{execution_id}/rollback")
    if not follow:
        emit(body, output) if output == "json" else \
            click.echo(f"execution {execution_id}: {body['status']}")
        return
    _finish_execution(_follow_execution(client, execution_id, output != "json"), output)


# --------------------------------------------------------------------------- files


@click.group()
def files() -> None:
    """Put, get, list and remove files in the manager's file store."""


def _account(account: str | None) -> str:
    value = account or os.environ.get("ACCOUNT_ID")
    if not value:
        raise click.ClickException("no account: pass --account ID or set ACCOUNT_ID")
    return value


option_account = click.option("--account", default=None, help="Account (default: $ACCOUNT_ID).")


@files.command("put")
@click.argument("local", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.argument("path")
@option_account
@option_manager
@option_output
def files_put(local: Path, path: str, account: str | None, manager_url: str | None,
              output: str) -> None:
    """Upload LOCAL to PATH (e.g. 'account:/ECS Tutorial/RegisterTaskDefinitionRequest.yaml')."""
    body = Client(manager_url).request("PUT", "/api/files", content=local.read_bytes(),
                                       params={"account": _account(account), "path": path})
    emit(body, output) if output == "json" else \
        click.echo(f"stored {body['path']} ({body['size']} bytes)")


@files.command("get")
@click.argument("path")
@click.option("--to", "dest", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write here instead of stdout.")
@option_account
@option_manager
def files_get(path: str, dest: Path | None, account: str | None,
              manager_url: str | None) -> None:
    content = Client(manager_url).request("GET", "/api/files/content",
                                          params={"account": _account(account), "path": path})
    if dest:
        dest.write_bytes(content)
    else:
        sys.stdout.buffer.write(content)


@files.command("ls")
@click.argument("prefix", default="")
@option_account
@option_manager
@option_output
def files_ls(prefix: str, account: str | None, manager_url: str | None, output: str) -> None:
    params = {"prefix": prefix}
    if account or os.environ.get("ACCOUNT_ID"):
        params["account"] = _account(account)
    body = Client(manager_url).request("GET", "/api/files", params=params)
    emit(body, output, table=(body["files"], ["account_id", "path", "size", "updated_at"]))


@files.command("rm")
@click.argument("path")
@option_account
@option_manager
def files_rm(path: str, account: str | None, manager_url: str | None) -> None:
    Client(manager_url).request("DELETE", "/api/files",
                                params={"account": _account(account), "path": path})
    click.echo(f"removed {path}")


# --------------------------------------------------------------------------- delegates


@click.command()
@option_manager
@option_output
def delegates(manager_url: str | None, output: str) -> None:
    """List the delegates the manager knows, connected or not."""
    body = Client(manager_url).request("GET", "/api/delegates")
    now = time.time()
    rows = [{**d, "heartbeat": f"{now - d['last_heartbeat']:.0f}s ago"
             if d.get("last_heartbeat") else "-"} for d in body["delegates"]]
    emit(body, output, table=(rows, ["name", "account_id", "state", "tags", "version",
                                     "hostname", "running_tasks", "capacity", "heartbeat"]))
