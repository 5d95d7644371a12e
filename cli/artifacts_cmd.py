"""``delegate artifacts tags SOURCE``: the tags of an artifact source as a delegate sees
them (the registry may be reachable only from inside the account), by an
``artifact.tags`` task run on a delegate chosen by ``--selector``.

SOURCE is ``ecr:REPOSITORY``, a registry URL with the repository
(``https://registry.example.com/team/web``, ``docker.io/library/nginx`` for Docker Hub),
or a YAML/JSON file holding a ``source`` mapping (as a service's ``artifact.source``)."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import click
import yaml

from cli.client import Client, ClientGroup, client_options, emit, follow_task
from cli.exitcodes import InputError, for_status

PASSWORD_ENV = "REGISTRY_PASSWORD"
_SECRET = "registryPassword"


def parse_source(text: str) -> dict[str, Any]:
    if text.startswith("ecr:"):
        return {"type": "ecr", "repository": text.removeprefix("ecr:")}
    if text.startswith("docker.io/"):
        return {"type": "dockerRegistry", "image": text.removeprefix("docker.io/")}
    if text.startswith(("http://", "https://")):
        url = urlsplit(text)
        if not url.path.strip("/"):
            raise InputError(f"{text}: name the repository after the registry, e.g. "
                             "https://registry.example.com/team/web")
        return {"type": "dockerRegistry", "registry": f"{url.scheme}://{url.netloc}",
                "image": url.path.strip("/")}
    path = Path(text)
    if path.is_file():
        try:
            data = yaml.safe_load(path.read_text())
        except (OSError, yaml.YAMLError) as exc:
            raise InputError(f"{path}: cannot read it as YAML: {exc}") from None
        source = data.get("source", data) if isinstance(data, dict) else None
        if not isinstance(source, dict):
            raise InputError(f"{path}: expected a mapping with `source` (type, ...)")
        return source
    raise InputError(f"{text}: not a source; write ecr:REPOSITORY, a registry URL with "
                     "the repository, docker.io/NAME, or a file holding `source`")


@click.group(cls=ClientGroup)
def artifacts() -> None:
    """Look up artifact sources through a delegate."""


@artifacts.command("tags")
@click.argument("source")
@click.option("--selector", "selectors", multiple=True,
              help="Run the look-up on a delegate with this tag (repeatable).")
@click.option("--region", default=None, help="ECR: the repository's Region.")
@click.option("--tag-regex", default=None, help="Only tags matching this (whole tag).")
@click.option("--username", default=None,
              help=f"Registry user; the password is read from ${PASSWORD_ENV}.")
@client_options
def artifacts_tags(source: str, selectors: tuple[str, ...], region: str | None,
                   tag_regex: str | None, username: str | None, client: Client,
                   output: str) -> None:
    """List the tags of SOURCE as a delegate sees them, oldest first."""
    src = parse_source(source)
    secrets: dict[str, str] = {}
    if username:
        password = os.environ.get(PASSWORD_ENV)
        if not password:
            raise InputError(f"--username {username}: set ${PASSWORD_ENV} to the password "
                             "(it is never taken on the command line)")
        src.update(username=username, passwordSecret=_SECRET)
        secrets[_SECRET] = password
    params: dict[str, Any] = {"source": src}
    if region:
        params["region"] = region
    if tag_regex:
        params["tagRegex"] = tag_regex
    body: dict[str, Any] = {"type": "artifact.tags", "selectors": list(selectors),
                            "params": params, "secrets": secrets, "timeout": "2m"}
    if client.account:
        body["account_id"] = client.account
    task_id = client.request("POST", "/api/tasks", json=body)["task_id"]
    follow_task(client, task_id, show_logs=False)
    task = client.request("GET", f"/api/tasks/{task_id}")
    if output == "json":
        emit(task.get("output") or {"error": task.get("error")}, output)
    elif task["status"] == "SUCCESS":
        out = task["output"]
        for tag in out.get("tags", []):
            digest = (out.get("digests") or {}).get(tag)
            click.echo(f"{tag}  {digest}" if digest else tag)
    else:
        click.echo(f"task {task_id} {task['status']}: {task.get('error')}", err=True)
    sys.exit(for_status(task["status"]))
