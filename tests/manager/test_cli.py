"""The manager CLI as a user runs it: ``manager serve`` in a subprocess, ``token create``,
and ``submit --follow`` exiting with the task's status code."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from wire.protocol import (
    Accept,
    LogLine,
    LogPayload,
    Pull,
    ResultPayload,
    TaskStatus,
    UnitPayload,
    UnitStatus,
)

from .conftest import ADMIN, FakeDelegate, Manager

PY = sys.executable


def _cmd(module: str, attr: str) -> list[str]:
    return [PY, "-c", f"import sys; from {module} import {attr} as c; "
                      f"sys.argv[0] = 'delegate'; c()"]


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[tuple[str, dict[str, str]]]:
    env = {**os.environ, "MANAGER_ADMIN_TOKEN": ADMIN, "MANAGER_SECRET_KEY": "k" * 40}
    proc = await asyncio.create_subprocess_exec(
        *_cmd("cli.manager_cmd", "manager"), "serve", "--port", "0", "--db",
        str(tmp_path / "m.db"), stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL, env=env)
    assert proc.stdout is not None
    line = (await asyncio.wait_for(proc.stdout.readline(), 30)).decode().strip()
    assert line.startswith("manager listening on http://127.0.0.1:")
    url = line.rsplit(" ", 1)[1]
    try:
        yield url, {**env, "MANAGER_HOST_AND_PORT": url}
    finally:
        proc.terminate()
        await asyncio.wait_for(proc.wait(), 30)


async def _run(env: dict[str, str], *args: str) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env)
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def test_serve_token_submit_follow(served: tuple[str, dict[str, str]],
                                         tmp_path: Path) -> None:
    url, env = served
    code, out, _ = await _run(env, *_cmd("cli.manager_cmd", "manager"), "token", "create",
                              "--account", "acct1")
    assert code == 0
    token = out.strip().splitlines()[-1]
    assert token.startswith("edt.")
    code, out, _ = await _run(env, *_cmd("cli.manager_cmd", "manager"), "token", "list")
    assert code == 0 and "acct1" in out and token not in out

    m = Manager(tmp_path / "unused.db")
    m.server = type("S", (), {"url": url})()  # type: ignore[assignment]
    d = FakeDelegate(m, token)
    await d.connect()
    task_file = tmp_path / "task.yaml"
    task_file.write_text("type: test.echo\nselectors: [a]\ntimeout: 1m\n"
                         "secrets: {PW: hidden-pw-value}\nparams: {x: 1}\n")
    submit = asyncio.create_task(_run(env, *_cmd("cli.submit_cmd", "submit"),
                                      str(task_file), "--follow"))
    await d.send(Pull(free_slots=1))
    task = (await d.next("assign")).task
    await d.send(Accept(task_id=task.task_id))
    now = datetime.now(UTC)
    await d.msg(task.task_id, 1, UnitPayload(unit="Deploy", status=UnitStatus.RUNNING,
                                             started_at=now))
    await d.msg(task.task_id, 2, LogPayload(unit="Deploy", lines=[
        LogLine(ts=now, text="Creating Task Definition with family web")]))
    await d.msg(task.task_id, 3, UnitPayload(unit="Deploy", status=UnitStatus.FAILURE,
                                             started_at=now, ended_at=now))
    await d.msg(task.task_id, 4, ResultPayload(status=TaskStatus.FAILED, error="no luck"))
    code, out, err = await submit
    assert code == 1, err
    assert "=== Deploy" in out and "Creating Task Definition with family web" in out
    assert "=== Deploy: FAILURE" in out and "error: no luck" in out
    assert "hidden-pw-value" not in out + err
    await d.close()


async def test_client_errors_are_one_line(tmp_path: Path,
                                          served: tuple[str, dict[str, str]]) -> None:
    _url, env = served
    code, _, err = await _run({**env, "MANAGER_ADMIN_TOKEN": "wrong"},
                              *_cmd("cli.delegates_cmd", "delegates"))
    assert code == 6 and "refused the admin token in MANAGER_ADMIN_TOKEN" in err
    code, _, err = await _run({**env, "MANAGER_HOST_AND_PORT": "http://127.0.0.1:1"},
                              *_cmd("cli.delegates_cmd", "delegates"))
    assert code == 7 and "manager unreachable at http://127.0.0.1:1" in err
    bad = tmp_path / "bad.yaml"
    bad.write_text("type: [unclosed\n")
    code, _, err = await _run(env, *_cmd("cli.submit_cmd", "submit"), str(bad))
    assert code == 2 and f"{bad}:" in err
