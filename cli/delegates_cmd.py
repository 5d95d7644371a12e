"""``delegate delegates list|prune``: the delegates a manager knows."""

from __future__ import annotations

import time
from typing import Any

import click

from cli.client import Client, ClientGroup, client_options, emit
from cli.manager_cmd import DURATION


class DelegatesGroup(ClientGroup):
    default_command = "list"


@click.group(cls=DelegatesGroup)
def delegates() -> None:
    """List the delegates a manager knows and prune the disconnected ones.

    Without a subcommand: 'list'."""


@delegates.command("list")
@client_options
def delegates_list(client: Client, output: str) -> None:
    """List the delegates the manager knows, connected or not."""
    body = client.request("GET", "/api/delegates", params=client.account_params())
    now = time.time()
    rows = [{**d, "heartbeat": f"{now - d['last_heartbeat']:.0f}s ago"
             if d.get("last_heartbeat") else "-"} for d in body["delegates"]]
    emit(body, output, table=(rows, ["name", "account_id", "state", "tags", "version",
                                     "hostname", "running_tasks", "capacity", "heartbeat"]))


@delegates.command("prune")
@click.option("--older-than", type=DURATION, default="1h", show_default=True,
              help="Forget disconnected delegates silent for longer than this.")
@client_options
def delegates_prune(older_than: float, client: Client, output: str) -> None:
    """Forget the 'disconnected' rows each delegate restart leaves behind.

    Only disconnected delegates silent for longer than --older-than, and none that still
    holds a task, are removed; a delegate that reconnects is listed again."""
    body: dict[str, Any] = client.request("DELETE", "/api/delegates",
                                          params={"older_than": older_than,
                                                  **client.account_params()})
    if output == "json":
        emit(body, output)
        return
    for d in body["pruned"]:
        click.echo(f"pruned {d['name']} ({d['account_id']}, {d['instance_id']})")
    click.echo(f"pruned {len(body['pruned'])} disconnected delegates")
