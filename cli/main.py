"""The ``delegate`` command. This module is the composition root: the only place that
names every package. Commands are imported lazily so ``delegate --help`` is fast and the
delegate process never loads the manager or the sandbox it does not use."""

from __future__ import annotations

import importlib
from typing import Any

import click

# name -> "module:attribute" of a click command or group, in help order.
COMMANDS: dict[str, tuple[str, str]] = {
    "run": ("cli.run:run", "Run the delegate: connect to a manager and run tasks."),
    "demo": ("cli.demo:demo", "Run the whole thing on embedded defaults, end to end."),
    "submit": ("cli.client:submit", "Submit a task or execution file to a manager."),
    "task": ("cli.client:task", "List, show, follow and abort tasks."),
    "execution": ("cli.client:execution", "List, show, abort and roll back executions."),
    "files": ("cli.client:files", "Put, get, list and remove files in the file store."),
    "delegates": ("cli.client:delegates", "List the delegates a manager knows."),
    "manager": ("cli.manager_cmd:manager", "Run the reference manager and manage its tokens."),
    "validate": ("cli.validate:validate",
                 "Check a task or execution file offline and print the AWS requests."),
    "sandbox": ("cli.sandbox_cmd:sandbox", "Run the embedded AWS sandbox (moto + ECS simulator)."),
    "protocol": ("cli.run:protocol", "Print the protocol's JSON Schema."),
    "docs": ("cli.run:docs", "Regenerate docs/protocol.md and docs/tasks.md."),
    "version": ("cli.run:version", "Print the version."),
}


# Top-level modules that come only with an optional extra, and that extra.
OPTIONAL = {"moto": "sandbox", "werkzeug": "sandbox", "flask": "sandbox"}


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in COMMANDS:
            return None
        target, _ = COMMANDS[cmd_name]
        module_name, attr = target.split(":")
        try:
            command: Any = getattr(importlib.import_module(module_name), attr)
        except ModuleNotFoundError as exc:
            extra = OPTIONAL.get((exc.name or "").split(".")[0])
            if extra is None:
                raise
            raise click.ClickException(
                f"'delegate {cmd_name}' needs the '{extra}' extra ({exc.name} is not "
                f"installed): pip install 'ecs-delegate[{extra}]'") from None
        assert isinstance(command, click.Command)
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        # Short help from the table, so listing commands imports nothing.
        with formatter.section("Commands"):
            formatter.write_dl([(name, summary) for name, (_, summary) in COMMANDS.items()])


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
def cli() -> None:
    """ecs-delegate: deploys services to AWS ECS on behalf of a manager."""


def main() -> None:
    cli()
