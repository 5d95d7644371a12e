"""The ``delegate`` command. This module is the composition root: the only place that
names every package. Commands are imported lazily so ``delegate --help`` is fast and the
delegate process never loads the manager or the sandbox it does not use."""

from __future__ import annotations

import importlib
import itertools
import os
import sys
from collections.abc import Mapping
from typing import Any

import click

from cli.exitcodes import InputError, code_for, help_table, report, use_json_errors
from cli.groups import resolve

# name -> "module:attribute" of a click command or group, in help order.
COMMANDS: dict[str, tuple[str, str]] = {
    "run": ("cli.run:run", "Run the delegate: connect to a manager and run tasks."),
    "demo": ("cli.demo:demo", "Run the whole thing on embedded defaults, end to end."),
    "submit": ("cli.submit_cmd:submit", "Submit a task or execution file to a manager."),
    "task": ("cli.task_cmd:task", "List, show, follow and abort tasks."),
    "execution": ("cli.execution_cmd:execution", "List, show, abort and roll back executions."),
    "files": ("cli.files_cmd:files", "Put, get, list and delete files in the file store."),
    "apply": ("cli.apply_cmd:apply", "Store services, environments, infrastructure and "
              "overrides from files."),
    "definitions": ("cli.apply_cmd:definitions",
                    "List, show, diff and delete stored definitions."),
    "artifacts": ("cli.artifacts_cmd:artifacts",
                  "List the tags of an artifact source, as a delegate sees them."),
    "delegates": ("cli.delegates_cmd:delegates",
                  "List the delegates a manager knows; prune disconnected ones."),
    "lookup": ("cli.lookup_cmd:lookup",
               "Look up clusters, load balancers, images ... through a delegate."),
    "instances": ("cli.instances_cmd:instances",
                  "Show what runs where for the deployed services, and drift."),
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


COMPLETION = """\b
Shell completion (bash; zsh and fish likewise with zsh_source, fish_source):
  eval "$(_DELEGATE_COMPLETE=bash_source delegate)"     # in ~/.bashrc"""


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
            raise InputError(
                f"'delegate {cmd_name}' needs the '{extra}' extra ({exc.name} is not "
                f"installed): pip install 'ecs-delegate[{extra}]'") from None
        assert isinstance(command, click.Command)
        return command

    def resolve_command(self, ctx: click.Context, args: list[str]
                        ) -> tuple[str | None, click.Command | None, list[str]]:
        return resolve(self, ctx, args)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        # Short help from the table, so listing commands imports nothing.
        with formatter.section("Commands"):
            formatter.write_dl([(name, summary) for name, (_, summary) in COMMANDS.items()])


@click.group(cls=LazyGroup, invoke_without_command=True,
             epilog=f"{help_table()}\n\n{COMPLETION}",
             context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--version", "show_version", is_flag=True, help="Print the version and exit.")
@click.option("--output", "-o", type=click.Choice(["text", "table", "json"]), default="text",
              help="With --version: json for scripts.")
@click.pass_context
def cli(ctx: click.Context, show_version: bool, output: str) -> None:
    """ecs-delegate: deploys services to AWS ECS on behalf of a manager."""
    if show_version:
        from cli.run import version

        ctx.invoke(version, output="json" if output == "json" else "text")
        ctx.exit(0)
    if ctx.invoked_subcommand is None:
        click.echo(ctx.get_help())


def wants_json(args: list[str]) -> bool:
    """``-o json`` anywhere on the line: known before click parses, so even a usage error
    is reported as JSON."""
    return any(a in ("-ojson", "--output=json") or (a in ("-o", "--output") and b == "json")
               for a, b in itertools.pairwise([*args, ""]))


def color_setting(environ: Mapping[str, str]) -> bool | None:
    """NO_COLOR (https://no-color.org) wins; CLICOLOR_FORCE forces colour off a terminal;
    otherwise click decides (colour only on a terminal)."""
    if environ.get("NO_COLOR"):
        return False
    if environ.get("CLICOLOR_FORCE", "0") not in ("", "0"):
        return True
    return None


def run(args: list[str], environ: Mapping[str, str]) -> int:
    """The boundary: every error becomes one line (or one JSON object) and the exit code
    of ``cli/exitcodes.py``."""
    use_json_errors(wants_json(args))
    color = color_setting(environ)
    try:
        with click.Context(cli, color=color):  # for report() before the real context
            rv = cli.main(args, prog_name="delegate", standalone_mode=False, color=color)
    except click.ClickException as exc:
        with click.Context(cli, color=color):
            report(exc)
        return int(code_for(exc))
    except click.Abort:
        click.echo("aborted", err=True)
        return 130
    return rv if isinstance(rv, int) else 0


def main() -> None:
    sys.exit(run(sys.argv[1:], os.environ))
