"""The command tree's conventions, offline: a summary line for every command, the same
verbs in every group (old spellings as aliases), "did you mean", the documented table."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from cli.client import ClientCommand
from cli.exitcodes import TABLE, ExitCode, for_status
from cli.main import COMMANDS, cli, color_setting, wants_json
from cli.submit_cmd import MAX_DEPTH, depth
from wire.urls import check_manager_url

README = Path(__file__).resolve().parents[2] / "README.md"


def walk(group: click.Group, path: tuple[str, ...] = ()) -> Iterator[
        tuple[tuple[str, ...], click.Command]]:
    ctx = click.Context(group)
    for name in group.list_commands(ctx):
        command = group.get_command(ctx, name)
        assert command is not None, name
        yield (*path, name), command
        if isinstance(command, click.Group):
            yield from walk(command, (*path, name))


def test_every_command_has_a_summary_line() -> None:
    missing = [" ".join(p) for p, c in walk(cli) if not c.get_short_help_str().strip()]
    assert missing == []


def test_client_commands_document_their_environment() -> None:
    client = [(p, c) for p, c in walk(cli) if isinstance(c, ClientCommand)]
    assert len(client) >= 18
    for path, _ in client:
        text = CliRunner().invoke(cli, [*path, "--help"]).output
        for var in ("MANAGER_HOST_AND_PORT", "MANAGER_ADMIN_TOKEN", "MANAGER_CA_BUNDLE",
                    "ACCOUNT_ID", "--ca-bundle", "--account"):
            assert var in text, (path, var)


def test_one_verb_per_action_and_the_old_spellings_still_work() -> None:
    verbs = {p[-1] for p, c in walk(cli) if len(p) > 1 and not isinstance(c, click.Group)}
    assert not verbs & {"ls", "rm"}, verbs
    for old, summary in ((["files", "ls"], "List stored files"),
                         (["files", "rm"], "Delete a stored file")):
        result = CliRunner().invoke(cli, [*old, "--help"])
        assert result.exit_code == 0 and summary in result.output


@pytest.mark.parametrize(("args", "suggestion"), [
    (["sumbit"], "submit"), (["exection"], "execution"), (["task", "abrt"], "abort"),
    (["files", "gte"], "get"), (["manager", "tokn"], "token"),
    (["delegates", "prnue"], "prune")])
def test_a_mistyped_command_gets_a_suggestion(args: list[str], suggestion: str) -> None:
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == ExitCode.USAGE
    assert f"Did you mean '{suggestion}'?" in result.output


def test_the_table_is_in_the_help_and_the_readme() -> None:
    text = CliRunner().invoke(cli, ["--help"]).output
    readme = README.read_text()
    for code in ExitCode:
        assert f"  {int(code)}  " in text
        assert f"| {int(code)} |" in readme, f"README lacks exit code {int(code)}"
    assert set(TABLE) == set(ExitCode)
    assert "_DELEGATE_COMPLETE=bash_source delegate" in text + readme
    assert set(COMMANDS) <= {p[0] for p, _ in walk(cli)}


def test_statuses_map_to_codes() -> None:
    assert for_status("SUCCESS") == 0 and for_status("FAILED") == 1
    assert for_status("ROLLED_BACK") == 1
    assert for_status("ROLLED_BACK", rollback_requested=True) == 0
    assert [for_status(s) for s in ("ABORTED", "TIMED_OUT", "LOST")] == [3, 4, 5]


def test_json_mode_colour_and_depth_helpers() -> None:
    assert wants_json(["task", "list", "-o", "json"]) and wants_json(["--output=json"])
    assert wants_json(["-ojson"]) and not wants_json(["-o", "table", "json"])
    assert not wants_json([]) and not wants_json(["-o"])
    assert color_setting({"NO_COLOR": "1", "CLICOLOR_FORCE": "1"}) is False
    assert color_setting({"CLICOLOR_FORCE": "1"}) is True and color_setting({}) is None
    nested: list[object] = []
    for _ in range(10_000):
        nested = [nested]
    assert depth(nested) == MAX_DEPTH + 1  # stops counting past the limit, no recursion
    assert depth({"a": [{"b": 1}]}) == 4


@pytest.mark.parametrize("url", ["127.0.0.1:8080", "manager.example.com", "ftp://x",
                                 "http://127.0.0.1:99999"])
def test_a_manager_url_is_refused_the_same_way(url: str) -> None:
    with pytest.raises(ValueError, match=r"URL like https://|a port is a number from 1 to 65535"):
        check_manager_url(url)
    assert check_manager_url(" https://m.example.com:443/ ") == "https://m.example.com:443"


def test_shell_completion_as_documented() -> None:
    env = {**os.environ, "_DELEGATE_COMPLETE": "bash_complete", "COMP_WORDS": "delegate fi",
           "COMP_CWORD": "1"}
    words = subprocess.run([sys.executable, "-m", "cli"], env=env, capture_output=True,
                           text=True, timeout=60)
    assert words.returncode == 0 and "plain,files" in words.stdout.split(), words.stderr
    env = {**os.environ, "_DELEGATE_COMPLETE": "bash_source"}
    script = subprocess.run([sys.executable, "-m", "cli"], env=env, capture_output=True,
                            text=True, timeout=60)
    assert script.returncode == 0 and "complete " in script.stdout
