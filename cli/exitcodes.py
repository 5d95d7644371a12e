"""The exit codes of every ``delegate`` client command, and the CLI's error root.

One table, so a script can tell "the deployment failed" (1) from "the manager is down"
(7) or "my token is wrong" (6). Errors are raised as a ``CliError`` subclass carrying
its code; ``cli.main`` translates everything else at the boundary (``code_for``) and
prints one line — or one JSON object under ``-o json``. ``delegate run`` keeps its own
codes (``cli/run.py``): it is a long-running process, not a request.
"""

from __future__ import annotations

import json
import sys
import textwrap
from enum import IntEnum
from typing import IO, Any, ClassVar

import click


class ExitCode(IntEnum):
    OK = 0
    FAILED = 1
    USAGE = 2
    ABORTED = 3
    TIMED_OUT = 4
    LOST = 5
    AUTH = 6
    UNREACHABLE = 7
    REFUSED = 8


# What each code means, for `delegate --help`, the README and the tests.
TABLE: dict[ExitCode, str] = {
    ExitCode.OK: "success (also: a requested rollback that ended ROLLED_BACK; "
                 "--no-wait: accepted)",
    ExitCode.FAILED: "the task or execution failed (FAILED, or ROLLED_BACK after a failed "
                     "step)",
    ExitCode.USAGE: "usage or input error: bad option, unreadable or invalid file, no "
                    "manager or one without http(s)://, unknown id, a request the "
                    "manager rejected (400/404/413/422)",
    ExitCode.ABORTED: "the task or execution was ABORTED",
    ExitCode.TIMED_OUT: "the task TIMED_OUT, or an execution failed because a step "
                        "TIMED_OUT (steadyStateTimeout)",
    ExitCode.LOST: "the task was LOST (its delegate vanished)",
    ExitCode.AUTH: "authentication: the admin token is missing or was refused (401/403)",
    ExitCode.UNREACHABLE: "manager unreachable: connection, DNS, timeout, TLS certificate "
                          "not trusted, or the manager failed (5xx)",
    ExitCode.REFUSED: "refused in the current state (409): rollback of a superseded "
                      "execution without --force, abort of a task that had already "
                      "finished",
}

# A task's or execution's final status -> exit code. ROLLED_BACK depends on why it rolled
# back: see ``for_status``.
_STATUS = {"SUCCESS": ExitCode.OK, "FAILED": ExitCode.FAILED, "ABORTED": ExitCode.ABORTED,
           "TIMED_OUT": ExitCode.TIMED_OUT, "LOST": ExitCode.LOST}


def for_status(status: str, *, rollback_requested: bool = False) -> ExitCode:
    """A rollback somebody asked for that completed is a success; one forced by a failed
    step is the failure it answers."""
    if status == "ROLLED_BACK":
        return ExitCode.OK if rollback_requested else ExitCode.FAILED
    return _STATUS.get(status, ExitCode.FAILED)


def for_execution(view: dict[str, Any], *, requested: bool = False) -> ExitCode:
    """An execution that failed because a deploy step ran out of time says so (4), as a
    task does, even when its rollback then succeeded."""
    code = for_status(view["status"],
                      rollback_requested=requested or bool(view.get("rollback_requested")))
    deploy_runs = [run for run in view.get("runs") or [] if run.get("phase") != "rollback"]
    if code is ExitCode.FAILED and any(run.get("status") == "TIMED_OUT" for run in deploy_runs):
        return ExitCode.TIMED_OUT
    return code


def help_table() -> str:
    """The table as a click epilog (``\\b`` keeps click from re-wrapping it)."""
    rows = "\n".join(textwrap.fill(text, 88, initial_indent=f"  {int(code)}  ",
                                   subsequent_indent="     ") for code, text in TABLE.items())
    return f"\b\nExit codes (every client command):\n{rows}"


class CliError(click.ClickException):
    """Root of the errors the CLI reports itself. ``exit_code`` follows ``code``, so a
    command invoked without ``cli.main`` (``click.testing``, ``python -c``) exits the
    same."""

    code: ClassVar[ExitCode] = ExitCode.USAGE
    exit_code: ClassVar[int] = int(ExitCode.USAGE)

    def __init_subclass__(cls, **kw: Any) -> None:
        super().__init_subclass__(**kw)
        cls.exit_code = int(cls.code)

    def show(self, file: IO[Any] | None = None) -> None:
        report(self, file)


class InputError(CliError):
    code = ExitCode.USAGE


class AuthError(CliError):
    code = ExitCode.AUTH


class Unreachable(CliError):
    code = ExitCode.UNREACHABLE


class Untrusted(Unreachable):
    """The manager answered with a certificate we do not trust: retrying cannot help."""


class Refused(CliError):
    code = ExitCode.REFUSED


# Set by ``-o json`` (the option's callback) or by ``cli.main`` from argv, so errors are
# printed as JSON for scripts. One process, one command: a module flag is enough.
_json_errors = False


def use_json_errors(on: bool = True) -> None:
    global _json_errors
    _json_errors = on


def code_for(exc: click.ClickException) -> ExitCode:
    """Translate any click error to the table: ours carry their code; click's usage
    errors (bad option, unknown command) and other commands' one-line errors are usage
    or input errors — never 1, which means a deployment failed."""
    if isinstance(exc, CliError):
        return exc.code
    return ExitCode.USAGE


def report(exc: click.ClickException, file: IO[Any] | None = None) -> None:
    """Print ``exc`` once: click's own text (with usage for usage errors), or a JSON object
    ``{"error", "exit_code", "reason"}`` under ``-o json``."""
    code = code_for(exc)
    if _json_errors:
        click.echo(json.dumps({"error": exc.format_message(), "exit_code": int(code),
                               "reason": code.name}), file=file or sys.stderr)
        return
    if isinstance(exc, click.UsageError):
        exc.show(file)
        return
    prefix = click.style("Error:", fg="red", bold=True)
    click.echo(f"{prefix} {exc.format_message()}", file=file or sys.stderr)
