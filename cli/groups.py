"""Command groups with the conventions people know from kubectl and the AWS CLI: one verb
per action across groups with the old spellings kept as aliases (``ls`` -> ``list``),
and "did you mean" for a mistyped command."""

from __future__ import annotations

import difflib
from collections.abc import Iterable

import click

# Old or short spellings -> the one verb every group uses.
ALIASES = {"ls": "list", "rm": "delete", "remove": "delete", "cat": "get", "log": "logs",
           "describe": "show", "cancel": "abort"}


def no_such_command(ctx: click.Context, name: str, choices: Iterable[str]) -> click.UsageError:
    close = difflib.get_close_matches(name, sorted(set(choices)), n=3, cutoff=0.6)
    hint = f" Did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
    return click.UsageError(f"No such command {name!r}.{hint}", ctx)


def resolve(group: click.Group, ctx: click.Context, args: list[str]
            ) -> tuple[str | None, click.Command | None, list[str]]:
    """``Group.resolve_command`` with our suggestions: click's own only knows the
    commands a group holds, and the lazy root group holds none until asked."""
    name = args[0]
    command = group.get_command(ctx, name)
    if command is None and not ctx.resilient_parsing and not name.startswith("-"):
        raise no_such_command(ctx, name, group.list_commands(ctx))
    return click.Group.resolve_command(group, ctx, args)


class VerbGroup(click.Group):
    """A group whose commands answer to their aliases too (not listed in help), and, with
    ``default_command``, runs that one when given only options (``delegate delegates -o
    json`` is ``delegate delegates list -o json``)."""

    default_command: str | None = None

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if self.default_command and (not args or args[0].startswith("-")) \
                and not set(args) & set(ctx.help_option_names):
            args = [self.default_command, *args]
        return super().parse_args(ctx, args)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        command = super().get_command(ctx, cmd_name)
        if command is None and cmd_name in ALIASES:
            command = super().get_command(ctx, ALIASES[cmd_name])
        return command

    def resolve_command(self, ctx: click.Context, args: list[str]
                        ) -> tuple[str | None, click.Command | None, list[str]]:
        return resolve(self, ctx, args)
