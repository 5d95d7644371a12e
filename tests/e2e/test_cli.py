"""The CLI as a user runs it, against a real manager: files, tasks, executions,
delegates, tokens; tables for people and --output json for scripts; exit codes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from cli.exitcodes import ExitCode
from testkit.stack import ADMIN_TOKEN, DelegateRunner, ManagerApi, ManagerProcess, running_manager


def cli(manager: ManagerProcess, *args: str, check: bool = True,
        stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "MANAGER_HOST_AND_PORT": manager.url,
           "MANAGER_ADMIN_TOKEN": ADMIN_TOKEN}
    proc = subprocess.run([sys.executable, "-m", "cli", *args], capture_output=True,
                          text=True, env=env, timeout=60, input=stdin)
    if check and proc.returncode != 0:
        raise AssertionError(f"delegate {' '.join(args)} -> {proc.returncode}\n"
                             f"{proc.stdout}\n{proc.stderr}")
    return proc


def as_json(proc: subprocess.CompletedProcess[str]) -> Any:
    return json.loads(proc.stdout)


def test_files_put_get_ls_rm(manager: ManagerProcess, tmp_path: Path) -> None:
    src = tmp_path / "td.yaml"
    src.write_text("family: web\n")
    path = "account:/ECS Tutorial/td.yaml"
    cli(manager, "files", "put", "--account", "acme", str(src), path)
    listed = as_json(cli(manager, "files", "list", "--account", "acme", "-o", "json"))
    assert [f["path"] for f in listed["files"]] == ["account:/ECS Tutorial/td.yaml"] or \
        [f["path"] for f in listed["files"]] == ["ECS Tutorial/td.yaml"]
    got = cli(manager, "files", "get", "--account", "acme", path)
    assert got.stdout == "family: web\n"
    refused = cli(manager, "files", "get", "--account", "acme", "../etc/passwd", check=False)
    assert refused.returncode == 2 and "'..'" in refused.stderr
    cli(manager, "files", "delete", "--account", "acme", path)
    assert as_json(cli(manager, "files", "ls", "--account", "acme", "-o", "json"))[
        "files"] == []


async def test_tasks_delegates_and_tokens(manager: ManagerProcess, api: ManagerApi,
                                          token: str, tmp_path: Path) -> None:
    task_file = tmp_path / "task.yaml"
    task_file.write_text("type: test.echo\nselectors: [cli]\nparams: {hello: world}\n")
    failing = tmp_path / "fail.yaml"
    failing.write_text("type: test.fail\nselectors: [cli]\nparams: {message: nope}\n")
    async with DelegateRunner(manager.url, token, name="cli-d", tags=("cli",)) as d:
        await d.registered()
        ok = await _run(cli, manager, "submit", str(task_file), "--output", "json")
        assert ok.returncode == 0
        result = json.loads(ok.stdout)
        assert result["status"] == "SUCCESS"
        followed = await _run(cli, manager, "submit", str(task_file), "--follow")
        assert "=== Echo" in followed.stdout and "=== Echo: SUCCESS" in followed.stdout
        bad = await _run(cli, manager, "submit", str(failing), check=False)
        assert bad.returncode == ExitCode.FAILED and "nope" in bad.stdout
        delegates = await _run(cli, manager, "delegates")
        assert "cli-d" in delegates.stdout and "connected" in delegates.stdout
    listed = as_json(cli(manager, "task", "list", "-o", "json"))
    assert len(listed["tasks"]) == 3
    shown = cli(manager, "task", "show", result["task_id"])
    assert "SUCCESS" in shown.stdout
    logs = cli(manager, "task", "logs", result["task_id"])
    assert "params {'hello': 'world'}" in logs.stdout
    tokens = as_json(cli(manager, "manager", "token", "list", "-o", "json"))
    assert token not in json.dumps(tokens)
    created = cli(manager, "manager", "token", "create", "--account", "other")
    new_token = created.stdout.strip().splitlines()[-1]
    assert new_token.startswith("edt.")
    cli(manager, "manager", "token", "revoke", new_token.split(".")[1])


async def _run(fn: Any, *args: Any, **kw: Any) -> subprocess.CompletedProcess[str]:
    import asyncio

    result: subprocess.CompletedProcess[str] = await asyncio.to_thread(fn, *args, **kw)
    return result


@pytest.mark.timeout(60)
async def test_finished_tasks_are_pruned_after_the_retention_age(tmp_path: Path) -> None:
    from testkit.stack import wait_for

    async with running_manager(tmp_path, extra_args=("--retention", "1s")) as manager, \
            manager.api() as client:
        api = ManagerApi(client)
        token = await api.create_token("acme")
        async with DelegateRunner(manager.url, token, tags=("r",)) as d:
            await d.registered()
            task_id = await api.submit({"type": "test.echo", "selectors": ["r"]})
            assert (await api.wait_finished(task_id))["status"] == "SUCCESS"

        async def gone() -> bool:
            return (await client.get(f"/api/tasks/{task_id}")).status_code == 404

        await wait_for(gone, timeout=20, interval=0.2, what="the finished task to be pruned")


async def test_execution_submit_follow_list_show(manager: ManagerProcess, api: ManagerApi,
                                                 token: str, tmp_path: Path) -> None:
    execution = tmp_path / "execution.yaml"
    execution.write_text(
        "name: two steps\nservice: web\nselectors: [cli]\n"
        "steps:\n"
        "  - {id: first, type: test.echo, params: {n: 1}}\n"
        "  - {id: second, type: test.fail, params: {message: 'second step broke'}}\n"
        "rollbackSteps:\n"
        "  - {id: undoSecond, type: test.echo, rollsBack: second,"
        " params: {from: '<+execution.steps.first.output.echo>'}}\n"
        "  - {id: undoFirst, type: test.echo, rollsBack: first, params: {}}\n")
    async with DelegateRunner(manager.url, token, name="cli-e", tags=("cli",)) as d:
        await d.registered()
        followed = await _run(cli, manager, "submit", str(execution), "--follow",
                              check=False)
    assert followed.returncode == 1, followed.stdout + followed.stderr
    out = followed.stdout
    order = [out.index(f"##### {label}") for label in (
        "Step first", "Step second", "Rollback step undoSecond", "Rollback step undoFirst")]
    assert order == sorted(order), out  # P1 -> P2 -> R2 -> R1
    assert "second step broke" in out
    listed = as_json(cli(manager, "execution", "list", "-o", "json"))
    [view] = listed["executions"]
    assert view["status"] == "FAILED"
    shown = cli(manager, "execution", "show", view["execution_id"])
    for step in ("first", "second", "undoSecond", "undoFirst"):
        assert step in shown.stdout


def test_files_put_recursive_keeps_relative_paths_and_names_what_it_skipped(
        manager: ManagerProcess, tmp_path: Path) -> None:
    tree = tmp_path / "ECS Tutorial"
    (tree / "blue-green").mkdir(parents=True)
    (tree / "RegisterTaskDefinitionRequest.yaml").write_text("family: web\n")
    (tree / "blue-green" / "Service.yaml").write_text("serviceName: web\n")
    (tree / ".hidden.yaml").write_text("x: 1\n")
    (tree / "alias.yaml").symlink_to(tree / "RegisterTaskDefinitionRequest.yaml")
    prefix = "account:/ECS Tutorial"
    ok = cli(manager, "files", "put", "--recursive", "--account", "acme", str(tree), prefix)
    assert f"uploaded 4 files (46 bytes) from {tree}" in ok.stdout, ok.stdout
    listed = as_json(cli(manager, "files", "list", "--account", "acme", "-o", "json"))
    paths = sorted(f["path"].removeprefix("account:/") for f in listed["files"])
    assert paths == ["ECS Tutorial/.hidden.yaml", "ECS Tutorial/RegisterTaskDefinitionRequest.yaml",
                     "ECS Tutorial/alias.yaml", "ECS Tutorial/blue-green/Service.yaml"]
    got = cli(manager, "files", "get", "--account", "acme", f"{prefix}/blue-green/Service.yaml")
    assert got.stdout == "serviceName: web\n"

    (tree / "empty").mkdir()
    (tree / "broken.yaml").symlink_to(tmp_path / "nowhere")
    partial = cli(manager, "files", "put", "-r", "--account", "acme", str(tree), prefix,
                  check=False)
    assert partial.returncode == 2
    assert f"skipped {tree / 'broken.yaml'}: a broken link" in partial.stderr
    assert f"skipped {tree / 'empty'}: an empty directory" in partial.stderr
    assert "uploaded 4 files" in partial.stdout and "skipped 2" in partial.stdout
    folder = cli(manager, "files", "put", "--account", "acme", str(tree), prefix, check=False)
    assert folder.returncode == 2 and "pass --recursive" in folder.stderr
