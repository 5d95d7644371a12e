"""``delegate submit``: send a task file or an execution file and wait for its end."""

from __future__ import annotations

import json
import sys
import uuid
from pathlib import Path
from typing import Any

import click
import yaml
from tenacity import Retrying, retry_if_exception, stop_after_attempt, wait_exponential

from cli.client import Client, ClientCommand, client_options, emit, follow_execution, follow_task
from cli.exitcodes import InputError, Unreachable, Untrusted, for_execution, for_status
from tasks.manifests.placeholders import find_placeholders

# Deeper than any real task or execution file; deeper than this and the YAML loader,
# json and pydantic each recurse near Python's own limit.
MAX_DEPTH = 64
# A retried submission is safe because it carries the same Idempotency-Key: the manager
# answers the first one's result instead of running it twice.
ATTEMPTS = 3


def depth(data: Any) -> int:
    """How deeply ``data`` nests, without recursing (a deep file must not crash us)."""
    deepest, stack = 0, [(data, 1)]
    while stack:
        node, level = stack.pop()
        deepest = max(deepest, level)
        if level > MAX_DEPTH:
            break
        children = node.values() if isinstance(node, dict) else \
            node if isinstance(node, list) else ()
        stack.extend((child, level + 1) for child in children)
    return deepest


def load_file(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: cannot read it: {getattr(exc, 'strerror', None) or exc}"
                         ) from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        raise InputError(f"{where}: not valid YAML or JSON: "
                         f"{getattr(exc, 'problem', exc)}") from None
    except RecursionError:
        raise InputError(f"{path}: nested too deeply to read (more than {MAX_DEPTH} "
                         "levels); no task or execution file needs that") from None
    if not isinstance(data, dict):
        raise InputError(f"{path}: expected a mapping with 'type' (a task) or 'steps' "
                         "(an execution)")
    if depth(data) > MAX_DEPTH:
        raise InputError(f"{path}: nested more than {MAX_DEPTH} levels deep; no task or "
                         "execution file needs that")
    # Refused before sending: a slot left from the example would reach AWS as text.
    placeholders = find_placeholders(data, file=str(path), raw=text)
    if placeholders:
        raise InputError("\n".join(str(p) for p in placeholders))
    return data


def _retryable(exc: BaseException) -> bool:
    return isinstance(exc, Unreachable) and not isinstance(exc, Untrusted)


def post(client: Client, path: str, body: dict[str, Any], key: str) -> dict[str, Any]:
    """POST with the same Idempotency-Key on each attempt; only an unreachable or failing
    manager is retried."""
    for attempt in Retrying(stop=stop_after_attempt(ATTEMPTS), reraise=True,
                            wait=wait_exponential(multiplier=0.5, max=4),
                            retry=retry_if_exception(_retryable)):
        with attempt:
            answer: dict[str, Any] = client.request("POST", path, json=body,
                                                    headers={"Idempotency-Key": key})
    return answer


@click.command(cls=ClientCommand)
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--follow", "-f", is_flag=True, help="Print the logs live, unit by unit.")
@click.option("--no-wait", is_flag=True, help="Print the id and return at once.")
@click.option("--idempotency-key", metavar="KEY", default=None,
              help="Send this Idempotency-Key (default: a new uuid each run); the manager "
                   "runs one submission per key.")
@client_options
def submit(file: Path, follow: bool, no_wait: bool, idempotency_key: str | None,
           client: Client, output: str) -> None:
    """Submit a task file or an execution file (one with 'steps') and wait for its end.

    The file's account_id, if it has none, is --account / ACCOUNT_ID. Exit code: the
    task's or execution's (0 SUCCESS, 1 FAILED, 3 ABORTED, 4 TIMED_OUT, 5 LOST)."""
    data = load_file(file)
    if not data.get("account_id") and client.account:
        data["account_id"] = client.account
    key = idempotency_key or str(uuid.uuid4())
    kind, path, id_key = ("execution", "/api/executions", "execution_id") \
        if "steps" in data else ("task", "/api/tasks", "task_id")
    created = post(client, path, data, key)
    ident = created[id_key]
    if no_wait:
        emit(created, output) if output == "json" else click.echo(ident)
        return
    if output != "json":
        click.echo(f"{kind} {ident} submitted ({created['status']})")
    show_logs = follow and output != "json"
    if kind == "execution":
        finish_execution(follow_execution(client, ident, show_logs), output)
    follow_task(client, ident, show_logs)
    finish_task(client.request("GET", f"/api/tasks/{ident}"), output)


def finish_task(task: dict[str, Any], output: str) -> None:
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
            click.echo(f"  {key}: {value if isinstance(value, str) else json.dumps(value)}")
    sys.exit(for_status(status))


def finish_execution(view: dict[str, Any], output: str, *, requested: bool = False) -> None:
    """Print the end and exit with its code; ``requested``: this command asked for the
    rollback, so ROLLED_BACK is what it wanted (else the manager's flag says)."""
    if output == "json":
        emit(view, output)
    else:
        click.echo(f"execution {view['execution_id']} {view['status']}")
        if view.get("error"):
            click.echo(f"error: {view['error']}")
    sys.exit(for_execution(view, requested=requested))

