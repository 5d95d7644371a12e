"""``delegate task list|show|logs|abort``."""

from __future__ import annotations

import json
from typing import Any

import click

from cli.client import (
    FINISHED,
    Client,
    ClientGroup,
    client_options,
    emit,
    fields,
    with_iso_times,
)
from cli.exitcodes import Refused
from manager.render import LogRenderer


@click.group(cls=ClientGroup)
def task() -> None:
    """List, show, follow and abort tasks."""


@task.command("list")
@click.option("--status", default=None, help="Only tasks in this status.")
@click.option("--limit", default=50, show_default=True)
@client_options
def task_list(status: str | None, limit: int, client: Client, output: str) -> None:
    """List the newest tasks (of --account, when given)."""
    params: dict[str, Any] = {"limit": limit, **client.account_params()}
    if status:
        params["status"] = status.upper()
    body = client.request("GET", "/api/tasks", params=params)
    emit(body, output, table=(body["tasks"], ["task_id", "type", "status", "delegate_name",
                                             "created_at", "waiting_reason"]))


@task.command("show")
@click.argument("task_id")
@client_options
def task_show(task_id: str, client: Client, output: str) -> None:
    """Show one task: status, delegate, units and output."""
    body = client.request("GET", f"/api/tasks/{task_id}")
    if output == "json":
        emit(body, output)
        return
    fields(body, "task_id", "type", "status", "delegate_name", "selectors", "waiting_reason",
           "error", "execution_id", "step_id")
    for unit in body["units"]:
        click.echo(f"  unit {unit['name']}: {unit['status']}")
    if body.get("output"):
        click.echo("output: " + json.dumps(body["output"], indent=2))


@task.command("logs")
@click.argument("task_id")
@click.option("--follow", "-f", is_flag=True, help="Keep printing until the task ends.")
@client_options
def task_logs(task_id: str, follow: bool, client: Client, output: str) -> None:
    """Print a task's log, unit by unit (one JSON object a line under -o json)."""
    renderer = LogRenderer(click.echo)
    for entry in client.stream_lines(f"/api/tasks/{task_id}/logs",
                                     follow="true" if follow else "false"):
        if output == "json":
            click.echo(json.dumps(with_iso_times(entry)))
        else:
            renderer.entry(entry)


@task.command("abort")
@click.argument("task_id")
@click.option("--reason", default="aborted by user", show_default=True)
@client_options
def task_abort(task_id: str, reason: str, client: Client, output: str) -> None:
    """Abort a task: at once when queued, by its delegate when running.

    A task that had already finished is left alone, and says so (exit code 8)."""
    before = client.request("GET", f"/api/tasks/{task_id}")
    if before["status"] in FINISHED:
        raise Refused(f"task {task_id} had already finished ({before['status']}); "
                      "nothing to abort")
    body = client.request("POST", f"/api/tasks/{task_id}/abort", json={"reason": reason})
    emit(body, output) if output == "json" else click.echo(f"task {task_id}: {body['status']}")
