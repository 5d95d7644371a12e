"""``delegate files put|get|list|delete``: the manager's file store, one account at a
time."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import click

from cli.client import Client, ClientGroup, client_options, emit
from cli.exitcodes import ExitCode, InputError


@click.group(cls=ClientGroup)
def files() -> None:
    """Put, get, list and delete files in the manager's file store."""


def walk(root: Path) -> tuple[list[Path], list[tuple[Path, str]]]:
    """Every file under ``root`` (sorted), and what cannot be uploaded with the reason:
    nothing is skipped silently. Links to directories are not followed (a loop would
    never end); links to files are uploaded as the file."""
    found: list[Path] = []
    skipped: list[tuple[Path, str]] = []
    for top, dirs, names in os.walk(root, onerror=lambda e: skipped.append(
            (Path(e.filename), f"cannot read the directory: {e.strerror}"))):
        here = Path(top)
        for d in sorted(dirs):
            if (here / d).is_symlink():
                skipped.append((here / d, "a link to a directory (not followed)"))
            elif _is_empty(here / d):
                skipped.append((here / d, "an empty directory (the store keeps files only)"))
        dirs.sort()
        for name in sorted(names):
            path = here / name
            if path.is_file():
                found.append(path)
            else:
                skipped.append((path, "a broken link" if path.is_symlink()
                                else "not a regular file"))
    return found, skipped


def _is_empty(folder: Path) -> bool:
    try:
        return not any(folder.iterdir())
    except OSError:
        return False  # os.walk reports it when it tries to enter


def join(prefix: str, relative: str) -> str:
    return f"{prefix.rstrip('/')}/{relative}" if prefix else relative


def _put(client: Client, local: Path, path: str) -> dict[str, Any]:
    try:
        content = local.read_bytes()
    except OSError as exc:
        raise InputError(f"{local}: cannot read it: {exc.strerror}") from None
    body: dict[str, Any] = client.request(
        "PUT", "/api/files", content=content,
        params={"account": client.require_account(), "path": path})
    return body


@files.command("put")
@click.argument("local", type=click.Path(exists=True, path_type=Path))
@click.argument("path")
@click.option("--recursive", "-r", is_flag=True,
              help="LOCAL is a folder: upload every file in it under PATH, keeping the "
                   "relative paths.")
@client_options
def files_put(local: Path, path: str, recursive: bool, client: Client, output: str) -> None:
    """Upload LOCAL to PATH (e.g. 'account:/ECS Tutorial/RegisterTaskDefinitionRequest.yaml').

    With --recursive, LOCAL is a folder and PATH the prefix ('account:/ECS Tutorial'):
    each file goes to PREFIX/its path in the folder. What cannot be uploaded is listed
    and the exit code is 2."""
    if not recursive:
        if local.is_dir():
            raise InputError(f"{local} is a folder: pass --recursive to upload what is in it")
        body = _put(client, local, path)
        emit(body, output) if output == "json" else \
            click.echo(f"stored {body['path']} ({body['size']} bytes)")
        return
    if not local.is_dir():
        raise InputError(f"{local} is not a folder (--recursive uploads a folder)")
    found, skipped = walk(local)
    stored = []
    for file in found:
        stored.append(_put(client, file, join(path, file.relative_to(local).as_posix())))
        if output != "json":
            click.echo(f"stored {stored[-1]['path']} ({stored[-1]['size']} bytes)")
    _summary(local, stored, skipped, output)


def _summary(local: Path, stored: list[dict[str, Any]], skipped: list[tuple[Path, str]],
             output: str) -> None:
    if output == "json":
        emit({"files": stored, "skipped": [{"local": str(p), "reason": r}
                                           for p, r in skipped]}, output)
    else:
        for p, reason in skipped:
            click.echo(f"skipped {p}: {reason}", err=True)
        size = sum(int(f["size"]) for f in stored)
        click.echo(f"uploaded {len(stored)} files ({size} bytes) from {local}"
                   + (f"; skipped {len(skipped)} (listed above)" if skipped else ""))
    if skipped:
        sys.exit(ExitCode.USAGE)


@files.command("get")
@click.argument("path")
@click.option("--to", "dest", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write here instead of stdout.")
@client_options
def files_get(path: str, dest: Path | None, client: Client, output: str) -> None:
    """Print a stored file (or write it to --to)."""
    content = client.request("GET", "/api/files/content",
                             params={"account": client.require_account(), "path": path})
    if dest:
        dest.write_bytes(content)
    else:
        sys.stdout.buffer.write(content)


@files.command("list")
@click.argument("prefix", default="")
@client_options
def files_list(prefix: str, client: Client, output: str) -> None:
    """List stored files under PREFIX (alias: ls)."""
    body = client.request("GET", "/api/files",
                          params={"prefix": prefix, **client.account_params()})
    emit(body, output, table=(body["files"], ["account_id", "path", "size", "updated_at"]))


@files.command("delete")
@click.argument("path")
@client_options
def files_delete(path: str, client: Client, output: str) -> None:
    """Delete a stored file (alias: rm)."""
    client.request("DELETE", "/api/files",
                   params={"account": client.require_account(), "path": path})
    emit({"deleted": path}, output) if output == "json" else click.echo(f"removed {path}")
