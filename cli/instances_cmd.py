"""``delegate instances [SERVICE]``: what runs where, as the last instance sync saw it —
each tracked service's state (in_sync, drift, deleted, unreachable), the revision
deployed and the one running, and its running tasks. ``--sync`` asks for a sync first."""

from __future__ import annotations

import time
from typing import Any

import click

from cli.client import Client, client_options, emit

SERVICE_COLUMNS = ["service", "cluster", "state", "deployed", "running_revision", "tasks",
                   "synced", "reason"]
TASK_COLUMNS = ["service", "cluster", "task", "revision", "image", "zone", "launch", "health",
                "status", "started"]


def service_rows(services: list[dict[str, Any]]) -> list[dict[str, Any]]:
    now = time.time()
    return [{
        "service": s["service"], "cluster": s["cluster"], "state": s["state"],
        "deployed": s["deployed"]["revision"], "running_revision": s["service_revision"],
        "tasks": len(s["instances"]), "reason": s["reason"],
        "synced": f"{now - s['synced_at']:.0f}s ago" if s.get("synced_at") else "never",
    } for s in services]


def task_rows(services: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{
        "service": s["service"], "cluster": s["cluster"],
        "task": str(t["taskArn"]).rsplit("/", 1)[-1][:12],
        "revision": t["revision"],
        "image": ", ".join(str(c.get("image")) for c in t.get("containers", [])),
        "zone": t.get("availabilityZone"), "launch": t.get("launchType"),
        "health": t.get("health"), "status": t.get("lastStatus"),
        "started": t.get("startedAt"),
    } for s in services for t in s["instances"]]


def print_instances(services: list[dict[str, Any]]) -> None:
    emit({}, "table", table=(service_rows(services), SERVICE_COLUMNS))
    rows = task_rows(services)
    if rows:
        click.echo()
        emit({}, "table", table=(rows, TASK_COLUMNS))


@click.command()
@click.argument("service", required=False)
@click.option("--cluster", help="Only this cluster's services.")
@click.option("--sync", "sync_first", is_flag=True,
              help="Sync now (one task per cluster) and wait for the answers first.")
@click.option("--wait", type=click.FloatRange(0, 120), default=60, show_default=True,
              help="With --sync: seconds to wait for the delegates' answers.")
@client_options
def instances(service: str | None, cluster: str | None, sync_first: bool, wait: float,
              client: Client, output: str) -> None:
    """Show the running tasks of the services the manager deployed, and drift."""
    if sync_first:
        sent = client.request("POST", "/api/instances/sync", params={"wait": wait})
        for gone in sent["unreachable"]:
            click.echo(f"cluster {gone['cluster']} ({gone['region']}) unreachable: "
                       f"{gone['reason']}", err=True)
    params = {k: v for k, v in {"service": service, "cluster": cluster}.items() if v}
    body = client.request("GET", "/api/instances",
                          params={**params, **client.account_params()})
    if output == "json":
        emit(body, output)
    elif not body["services"]:
        click.echo("no tracked services" + (f" named {service}" if service else "")
                   + ": a service is tracked once a deployment step finishes")
    else:
        print_instances(body["services"])
