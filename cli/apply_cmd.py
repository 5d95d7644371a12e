"""``delegate apply -f FILE|DIR`` and ``delegate definitions list|show|diff|delete``: the
manager's stored services, environments, infrastructure definitions and overrides."""

from __future__ import annotations

import difflib
import json
from pathlib import Path
from typing import Any

import click
import yaml

from cli.client import Client, ClientCommand, ClientGroup, client_options, emit
from cli.definition_files import read_documents

_FILE = click.option("--filename", "-f", "target", required=True,
                     type=click.Path(exists=True, path_type=Path),
                     help="A YAML/JSON file (documents separated by ---) or a folder of them.")


def _send(client: Client, target: Path, *, dry_run: bool) -> list[dict[str, Any]]:
    docs = read_documents(target)
    body: dict[str, Any] = {"documents": [d for _, d in docs],
                            "sources": [w for w, _ in docs], "dry_run": dry_run}
    if client.account:
        body["account_id"] = client.account
    results: list[dict[str, Any]] = client.request("POST", "/api/definitions/apply",
                                                   json=body)["results"]
    return results


@click.command("apply", cls=ClientCommand)
@_FILE
@client_options
def apply(target: Path, client: Client, output: str) -> None:
    """Store the definitions in FILE or DIR; each line says created, updated (a new
    revision) or unchanged. Applying the same files again changes nothing."""
    results = _send(client, target, dry_run=False)
    if output == "json":
        emit({"results": results}, output)
        return
    for r in results:
        click.echo(f"{r['kind'].lower()}/{r['name']} {r['action']} (revision {r['revision']})")


@click.group(cls=ClientGroup)
def definitions() -> None:
    """List, show, diff and delete stored services, environments, infrastructure
    definitions and overrides."""


@definitions.command("list")
@click.option("--kind", default=None, help="Service, Environment, Infrastructure or Override.")
@client_options
def definitions_list(kind: str | None, client: Client, output: str) -> None:
    """List the current revision of every stored definition."""
    params = {**client.account_params(), **({"kind": kind} if kind else {})}
    body = client.request("GET", "/api/definitions", params=params)
    emit(body, output, table=(body["definitions"], ["kind", "name", "revision", "created_at"]))


@definitions.command("show")
@click.argument("kind")
@click.argument("name")
@click.option("--revision", type=int, default=None, help="An earlier revision.")
@client_options
def definitions_show(kind: str, name: str, revision: int | None, client: Client,
                     output: str) -> None:
    """Show one definition (KIND NAME): its spec, its revisions, who uses it."""
    params: dict[str, Any] = {**client.account_params(),
                              **({"revision": revision} if revision else {})}
    body = client.request("GET", f"/api/definitions/{kind}/{name}", params=params)
    if output == "json":
        emit(body, output)
        return
    click.echo(f"{body['kind']}/{body['name']} revision {body['revision']}")
    click.echo(yaml.safe_dump(body["spec"], sort_keys=False).rstrip())
    click.echo("revisions: " + ", ".join(
        f"{r['revision']}{' (deleted)' if r['deleted'] else ''}" for r in body["revisions"]))
    if body["used_by"]:
        click.echo("used by: " + ", ".join(body["used_by"]))


def _yaml(spec: Any) -> list[str]:
    if spec is None:
        return []
    return yaml.safe_dump(json.loads(json.dumps(spec)), sort_keys=True).splitlines(True)


@definitions.command("diff")
@_FILE
@client_options
def definitions_diff(target: Path, client: Client, output: str) -> None:
    """Show what `apply -f` would change, as a unified diff per definition."""
    results = _send(client, target, dry_run=True)
    if output == "json":
        emit({"results": results}, output)
        return
    for r in results:
        name = f"{r['kind'].lower()}/{r['name']}"
        if r["action"] == "unchanged":
            click.echo(f"{name} unchanged")
            continue
        click.echo(f"{name} would be {r['action']}:")
        for line in difflib.unified_diff(_yaml(r["stored"]), _yaml(r["spec"]),
                                         f"{name} (stored)", f"{name} ({target})"):
            click.echo(line.rstrip("\n"))


@definitions.command("delete")
@click.argument("kind")
@click.argument("name")
@client_options
def definitions_delete(kind: str, name: str, client: Client, output: str) -> None:
    """Delete a definition (its revisions are kept). Refused (exit code 8) while an
    execution that has not finished uses it."""
    body = client.request("DELETE", f"/api/definitions/{kind}/{name}",
                          params=client.account_params())
    emit(body, output) if output == "json" else \
        click.echo(f"{body['kind'].lower()}/{body['name']} deleted")
