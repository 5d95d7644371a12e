"""``delegate execution render FILE``: the effective manifests and variables of an
execution file, each with where it came from, as the manager computes them on submit."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from cli.client import Client, ClientCommand, client_options, emit
from cli.submit_cmd import load_file


def explain(body: dict[str, Any]) -> list[str]:
    """The lines a person reads: where it deploys, then each manifest and variable with
    the definition that decided it."""
    lines = []
    if body.get("by_reference"):
        infra = body["infrastructure"]
        lines.append(f"service {body['service']} to environment {body['environment']}, "
                     f"infrastructure {infra['name']} ({infra.get('region')}/"
                     f"{infra.get('cluster')})")
        lines.append("definitions: " + ", ".join(
            f"{d['kind'].lower()}/{d['name']}@{d['revision']}" for d in body["definitions"]))
    lines.append("manifests:")
    for kind, item in body["manifests"].items():
        lines.append(f"  {kind}: from {item['from']}")
    lines.append("variables:")
    for name, item in body["variables"].items():
        lines.append(f"  {name} = {json.dumps(item['value'])}  (from {item['from']})")
    return lines


@click.command("render", cls=ClientCommand)
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@client_options
def render(file: Path, client: Client, output: str) -> None:
    """Print the effective manifests and variables of the execution FILE, each with
    where it came from (service, environment, override), before anything runs."""
    spec = load_file(file)
    if client.account and not spec.get("account_id"):
        spec["account_id"] = client.account
    body = client.request("POST", "/api/executions/render", json=spec)
    if output == "json":
        emit(body, output)
        return
    for line in explain(body):
        click.echo(line)
