"""``delegate execution list|show|abort|rollback|rerun``."""

from __future__ import annotations

from typing import Any

import click

from cli.client import (
    EXECUTION_FINISHED,
    Client,
    ClientGroup,
    client_options,
    emit,
    fields,
    follow_execution,
)
from cli.exitcodes import Refused
from cli.render_cmd import render
from cli.submit_cmd import finish_execution


@click.group(cls=ClientGroup)
def execution() -> None:
    """List, show, abort and roll back executions."""


@execution.command("list")
@click.option("--status", default=None, help="Only executions in this status.")
@click.option("--limit", default=50, show_default=True)
@client_options
def execution_list(status: str | None, limit: int, client: Client, output: str) -> None:
    """List the newest executions (of --account, when given)."""
    params: dict[str, Any] = {"limit": limit, **client.account_params()}
    if status:
        params["status"] = status.upper()
    body = client.request("GET", "/api/executions", params=params)
    emit(body, output, table=(body["executions"], ["execution_id", "name", "service",
                                                   "status", "created_at",
                                                   "waiting_reason"]))


@execution.command("show")
@click.argument("execution_id")
@client_options
def execution_show(execution_id: str, client: Client, output: str) -> None:
    """Show one execution and the task of each step it ran."""
    body = client.request("GET", f"/api/executions/{execution_id}")
    if output == "json":
        emit(body, output)
        return
    fields(body, "execution_id", "name", "service", "status", "phase", "waiting_reason",
           "error")
    emit(body, output, table=(body["runs"], ["phase", "step_id", "rolls_back", "task_id",
                                             "status", "error"]))


@execution.command("abort")
@click.argument("execution_id")
@click.option("--reason", default="aborted by user", show_default=True)
@client_options
def execution_abort(execution_id: str, reason: str, client: Client, output: str) -> None:
    """Stop without rolling back (exit code 8 when it had already finished)."""
    before = client.request("GET", f"/api/executions/{execution_id}")
    if before["status"] in EXECUTION_FINISHED:
        raise Refused(f"execution {execution_id} had already finished "
                      f"({before['status']}); nothing to abort")
    body = client.request("POST", f"/api/executions/{execution_id}/abort",
                          json={"reason": reason})
    emit(body, output) if output == "json" else \
        click.echo(f"execution {execution_id}: {body['status']}")


@execution.command("rollback")
@click.argument("execution_id")
@click.option("--follow", "-f", is_flag=True, help="Follow the rollback steps to the end.")
@click.option("--force", is_flag=True,
              help="Roll back even an execution that newer ones superseded (the manager "
                   "says what it will do first).")
@client_options
def execution_rollback(execution_id: str, follow: bool, force: bool, client: Client,
                       output: str) -> None:
    """Roll back on request: interrupt the running step, then run the rollback steps of
    every step that started, newest first.

    Only the latest execution of a service (or the running one) rolls back; for an older
    one the manager refuses and says which came after (exit code 8) unless --force. With
    --follow the exit code is the rollback's: 0 when it ended ROLLED_BACK."""
    body = client.request("POST", f"/api/executions/{execution_id}/rollback",
                          **({"json": {"force": True}} if force else {}))
    if output != "json" and body.get("plan"):
        click.echo(body["plan"])
    if not follow:
        emit(body, output) if output == "json" else \
            click.echo(f"execution {execution_id}: {body['status']}")
        return
    finish_execution(follow_execution(client, execution_id, output != "json"), output,
                     requested=True)

@execution.command("rerun")
@click.argument("execution_id")
@click.option("--follow", "-f", is_flag=True, help="Follow the new execution to the end.")
@client_options
def execution_rerun(execution_id: str, follow: bool, client: Client, output: str) -> None:
    """Run an execution again with the inputs it ran with: the same definitions'
    revisions, and its artifact pinned to the digest it resolved (a tag pushed since is
    not looked up). With --follow the exit code is the new execution's."""
    body = client.request("POST", f"/api/executions/{execution_id}/rerun")
    if not follow:
        emit(body, output) if output == "json" else \
            click.echo(f"execution {body['execution_id']}: {body['status']} "
                       f"(a re-run of {execution_id})")
        return
    finish_execution(follow_execution(client, body["execution_id"], output != "json"),
                     output)


# `delegate execution render FILE` lives with the definitions it explains.
execution.add_command(render)
