"""Every code of the exit-code table (cli/exitcodes.py), produced by the real CLI against
a real manager, for every client command."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from cli.exitcodes import ExitCode
from cli.main import run
from testkit.stack import (
    ADMIN_TOKEN,
    DelegateRunner,
    ManagerApi,
    ManagerProcess,
    running_manager,
    wait_for,
)


def delegate(url: str, *args: str, env: dict[str, str] | None = None,
             cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """The installed command line, as a user runs it."""
    full = {**os.environ, "MANAGER_HOST_AND_PORT": url, "MANAGER_ADMIN_TOKEN": ADMIN_TOKEN,
            "ACCOUNT_ID": "acme", **(env or {})}
    return subprocess.run([sys.executable, "-m", "cli", *args], capture_output=True,
                          text=True, env={k: v for k, v in full.items() if v is not None},
                          timeout=90, cwd=cwd)


async def adelegate(url: str, *args: str, **kw: object) -> subprocess.CompletedProcess[str]:
    """``delegate`` off the event loop, which runs the in-process delegate meanwhile."""
    return await asyncio.to_thread(delegate, url, *args, **kw)  # type: ignore[arg-type]


@pytest.fixture
def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


@pytest.fixture
def task_file(tmp_path: Path) -> Path:
    path = tmp_path / "task.yaml"
    path.write_text("type: test.echo\nselectors: [codes]\n")
    return path


def client_commands(task_file: Path) -> list[list[str]]:
    return [
        ["submit", str(task_file)],
        ["task", "list"], ["task", "show", "t-x"], ["task", "logs", "t-x"],
        ["task", "abort", "t-x"],
        ["execution", "list"], ["execution", "show", "e-x"], ["execution", "abort", "e-x"],
        ["execution", "rollback", "e-x"],
        ["files", "put", str(task_file), "account:/x.yaml"], ["files", "get", "account:/x"],
        ["files", "list"], ["files", "delete", "account:/x"],
        ["delegates", "list"], ["delegates", "prune"],
        ["manager", "token", "create"], ["manager", "token", "list"],
        ["manager", "token", "revoke", "x"],
    ]


@pytest.fixture
def in_process(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
               ) -> Iterator[object]:
    """``cli.main.run`` in this process (the same boundary the command runs through): the
    18-command matrix would take a minute as subprocesses."""
    def call(env: dict[str, str], *args: str) -> tuple[int, str, str]:
        for key, value in {"ACCOUNT_ID": "acme", **env}.items():
            monkeypatch.setenv(key, value)
        code = run(list(args), os.environ)
        out, err = capsys.readouterr()
        return code, out, err

    yield call


def test_every_client_command_has_the_auth_unreachable_and_usage_codes(
        manager: ManagerProcess, task_file: Path, closed_port: int, in_process: object
        ) -> None:
    call = in_process
    for args in client_commands(task_file):
        code, _, err = call({"MANAGER_HOST_AND_PORT": manager.url,  # type: ignore[operator]
                             "MANAGER_ADMIN_TOKEN": "wrong"}, *args)
        assert code == ExitCode.AUTH, (args, err)
        assert "refused the admin token in MANAGER_ADMIN_TOKEN" in err, (args, err)
        assert len(err.strip().splitlines()) == 1, err

        code, _, err = call({"MANAGER_HOST_AND_PORT": f"http://127.0.0.1:{closed_port}",  # type: ignore[operator]
                             "MANAGER_ADMIN_TOKEN": ADMIN_TOKEN}, *args, "-o", "json")
        assert code == ExitCode.UNREACHABLE, (args, err)
        error = json.loads(err)
        assert error["exit_code"] == 7 and error["reason"] == "UNREACHABLE", error
        assert "manager unreachable at" in error["error"]

        code, _, err = call({"MANAGER_HOST_AND_PORT": f"127.0.0.1:{closed_port}"}, *args)  # type: ignore[operator]
        assert code == ExitCode.USAGE, (args, err)
        assert "the scheme, http:// or https://, is required" in err, (args, err)


def test_usage_errors_exit_2_and_are_json_under_o_json(manager: ManagerProcess,
                                                       tmp_path: Path) -> None:
    typo = delegate(manager.url, "task", "lst")
    assert typo.returncode == ExitCode.USAGE and "Did you mean 'list'?" in typo.stderr
    top = delegate(manager.url, "sumbit")
    assert top.returncode == ExitCode.USAGE and "Did you mean 'submit'?" in top.stderr
    option = delegate(manager.url, "task", "list", "--limt", "3", "-o", "json")
    assert option.returncode == ExitCode.USAGE
    assert json.loads(option.stderr)["reason"] == "USAGE"
    missing = delegate(manager.url, "task", "show", "t-nope")
    assert missing.returncode == ExitCode.USAGE and "no task t-nope" in missing.stderr
    no_manager = delegate("", "task", "list", env={"MANAGER_HOST_AND_PORT": None})  # type: ignore[dict-item]
    assert no_manager.returncode == ExitCode.USAGE
    assert "pass --manager URL or set MANAGER_HOST_AND_PORT" in no_manager.stderr
    no_account = delegate(manager.url, "files", "get", "x", env={"ACCOUNT_ID": None})  # type: ignore[dict-item]
    assert no_account.returncode == ExitCode.USAGE and "set ACCOUNT_ID" in no_account.stderr
    token = delegate(manager.url, "manager", "token", "create", env={"ACCOUNT_ID": None})  # type: ignore[dict-item]
    assert token.returncode == ExitCode.USAGE and "--account" in token.stderr


def test_bad_files_exit_2_with_one_line(manager: ManagerProcess, tmp_path: Path) -> None:
    invalid = tmp_path / "bad.yaml"
    invalid.write_text("type: [unclosed\n")
    deep = tmp_path / "deep.json"
    deep.write_text('{"type": "test.echo", "params": ' + "[" * 5000 + "]" * 5000 + "}")
    scalar = tmp_path / "scalar.yaml"
    scalar.write_text("just a string\n")
    for path, says in ((invalid, f"{invalid}:2: not valid YAML"),
                       (deep, "nested too deeply"),
                       (scalar, "expected a mapping")):
        proc = delegate(manager.url, "submit", str(path))
        assert proc.returncode == ExitCode.USAGE, proc.stderr
        assert says in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
        assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    gone = delegate(manager.url, "submit", str(tmp_path / "nope.yaml"))
    assert gone.returncode == ExitCode.USAGE


async def test_submit_and_task_codes_success_failed_aborted_timed_out_refused(
        manager: ManagerProcess, api: ManagerApi, token: str, tmp_path: Path) -> None:
    files = {name: tmp_path / f"{name}.yaml" for name in ("ok", "fail", "hang", "queued")}
    files["ok"].write_text("type: test.echo\nselectors: [codes]\n")
    files["fail"].write_text("type: test.fail\nselectors: [codes]\n")
    files["hang"].write_text("type: test.hang\nselectors: [codes]\ntimeout: 1s\n")
    files["queued"].write_text("type: test.echo\nselectors: [nobody-has-this]\n")
    async with DelegateRunner(manager.url, token, tags=("codes",)) as d:
        await d.registered()
        ok = await adelegate(manager.url, "submit", str(files["ok"]), "-o", "json")
        assert ok.returncode == ExitCode.OK, ok.stderr
        done = json.loads(ok.stdout)
        assert done["account_id"] == "acme"  # from ACCOUNT_ID: the file has none
        assert done["created_at"].endswith("Z") and "T" in done["created_at"]  # ISO-8601
        failed = await adelegate(manager.url, "submit", str(files["fail"]))
        assert failed.returncode == ExitCode.FAILED
        timed = await adelegate(manager.url, "submit", str(files["hang"]))
        assert timed.returncode == ExitCode.TIMED_OUT, timed.stdout + timed.stderr

        waiting = asyncio.create_task(adelegate(manager.url, "submit", str(files["queued"])))
        tasks = await wait_for(lambda: _queued(api), what="the queued task")
        aborted = await adelegate(manager.url, "task", "abort", tasks[0]["task_id"])
        assert aborted.returncode == ExitCode.OK, aborted.stderr
        assert (await waiting).returncode == ExitCode.ABORTED

    again = await adelegate(manager.url, "task", "abort", done["task_id"])
    assert again.returncode == ExitCode.REFUSED
    assert f"task {done['task_id']} had already finished (SUCCESS)" in again.stderr
    for args in (["task", "list"], ["task", "show", done["task_id"]],
                 ["task", "logs", done["task_id"]]):
        assert (await adelegate(manager.url, *args)).returncode == ExitCode.OK


async def _queued(api: ManagerApi) -> list[dict[str, object]]:
    body = (await api.client.get("/api/tasks", params={"status": "QUEUED"})).json()
    tasks: list[dict[str, object]] = body["tasks"]
    return tasks


@pytest.mark.timeout(90)
async def test_submit_exits_5_when_the_delegate_vanishes(tmp_path: Path) -> None:
    # No reconnect grace: it only delays the first lease expiry after a manager start (60 s
    # by default), and this manager was just started; the lease itself still runs out.
    args = ("--heartbeat-interval", "0.2s", "--lease-ttl", "1s", "--reconnect-grace", "0s")
    async with running_manager(tmp_path, extra_args=args) as manager, \
            manager.api() as client:
        api = ManagerApi(client)
        token = await api.create_token("acme")
        hang = tmp_path / "hang.yaml"
        hang.write_text("type: test.hang\nselectors: [lost]\n")
        d = DelegateRunner(manager.url, token, tags=("lost",))
        await d.__aenter__()
        await d.registered()
        waiting = asyncio.create_task(adelegate(manager.url, "submit", str(hang)))
        await wait_for(lambda: d.delegate.runner.running_ids(), what="the task to start")
        assert d.task is not None
        d.task.cancel()  # the delegate dies without a word: its lease runs out
        proc = await waiting
        assert proc.returncode == ExitCode.LOST, proc.stdout + proc.stderr


async def test_execution_codes_rollback_on_request_is_success(
        manager: ManagerProcess, token: str, tmp_path: Path) -> None:
    execution = tmp_path / "execution.yaml"
    execution.write_text(
        "name: ok\nservice: codes-web\nselectors: [codes]\n"
        "steps:\n  - {id: first, type: test.echo, params: {n: 1}}\n"
        "rollbackSteps:\n  - {id: undoFirst, type: test.echo, rollsBack: first}\n")
    async with DelegateRunner(manager.url, token, tags=("codes",)) as d:
        await d.registered()
        ok = await adelegate(manager.url, "submit", str(execution), "-o", "json")
        assert ok.returncode == ExitCode.OK, ok.stderr
        eid = json.loads(ok.stdout)["execution_id"]
        back = await adelegate(manager.url, "execution", "rollback", eid, "--follow")
        assert back.returncode == ExitCode.OK, back.stdout + back.stderr
        assert f"execution {eid} ROLLED_BACK" in back.stdout
    twice = await adelegate(manager.url, "execution", "rollback", eid)
    assert twice.returncode == ExitCode.REFUSED, twice.stderr
    abort = await adelegate(manager.url, "execution", "abort", eid)
    assert abort.returncode == ExitCode.REFUSED and "had already finished" in abort.stderr
    for args in (["execution", "list"], ["execution", "show", eid]):
        assert (await adelegate(manager.url, *args)).returncode == ExitCode.OK
    missing = await adelegate(manager.url, "execution", "show", "e-nope")
    assert missing.returncode == ExitCode.USAGE


async def test_files_delegates_and_token_commands_succeed(
        manager: ManagerProcess, api: ManagerApi, token: str, tmp_path: Path) -> None:
    async with DelegateRunner(manager.url, token, name="short-lived", tags=("codes",)) as d:
        await d.registered()
    await wait_for(lambda: _states(api, "disconnected"), what="the delegate to disconnect")
    listed = await adelegate(manager.url, "delegates", "-o", "json")
    assert listed.returncode == ExitCode.OK
    assert [x["state"] for x in json.loads(listed.stdout)["delegates"]] == ["disconnected"]
    pruned = await adelegate(manager.url, "delegates", "prune", "--older-than", "0s")
    assert pruned.returncode == ExitCode.OK and "pruned short-lived" in pruned.stdout
    assert await api.delegates() == []

    created = await adelegate(manager.url, "manager", "token", "create", "--account", "b")
    assert created.returncode == ExitCode.OK
    token_id = created.stdout.strip().splitlines()[-1].split(".")[1]
    assert (await adelegate(manager.url, "manager", "token", "list")).returncode == 0
    revoked = await adelegate(manager.url, "manager", "token", "revoke", token_id)
    assert revoked.returncode == ExitCode.OK


async def _states(api: ManagerApi, state: str) -> bool:
    return all(d["state"] == state for d in await api.delegates())


def test_token_commands_on_the_managers_host_read_its_admin_token_file(
        manager: ManagerProcess, tmp_path: Path) -> None:
    (tmp_path / "manager.db.admin-token").write_text(ADMIN_TOKEN + "\n")
    proc = delegate(manager.url, "manager", "token", "list", cwd=tmp_path,
                    env={"MANAGER_ADMIN_TOKEN": None})  # type: ignore[dict-item]
    assert proc.returncode == ExitCode.OK, proc.stderr
    refused = delegate(manager.url, "task", "list", cwd=tmp_path,
                       env={"MANAGER_ADMIN_TOKEN": None})  # type: ignore[dict-item]
    assert refused.returncode == ExitCode.AUTH
    assert "wants its admin token: set MANAGER_ADMIN_TOKEN" in refused.stderr


def test_no_color_wins_over_forced_colour(manager: ManagerProcess) -> None:
    forced = delegate(manager.url, "task", "show", "t-nope", env={"CLICOLOR_FORCE": "1"})
    assert "\x1b[" in forced.stderr
    plain = delegate(manager.url, "task", "show", "t-nope",
                     env={"CLICOLOR_FORCE": "1", "NO_COLOR": "1"})
    assert plain.returncode == ExitCode.USAGE and "\x1b[" not in plain.stderr


def test_version_text_and_json() -> None:
    text = delegate("", "--version")
    assert text.returncode == 0 and text.stdout.startswith("ecs-delegate ")
    as_json = delegate("", "--version", "-o", "json")
    assert json.loads(as_json.stdout)["version"] == text.stdout.split()[1]


async def test_an_untrusted_manager_certificate_says_what_to_set(tmp_path: Path) -> None:
    from tests.e2e.test_tls import make_ca_and_cert

    ca, cert, key = make_ca_and_cert(tmp_path)
    async with running_manager(tmp_path, extra_args=("--tls-cert", str(cert),
                                                     "--tls-key", str(key))) as manager:
        untrusted = await adelegate(manager.url, "task", "list",
                                    env={"MANAGER_CA_BUNDLE": None})
        assert untrusted.returncode == ExitCode.UNREACHABLE
        assert "TLS certificate at https://127.0.0.1:" in untrusted.stderr
        assert "pass --ca-bundle FILE or set MANAGER_CA_BUNDLE" in untrusted.stderr
        assert len(untrusted.stderr.strip().splitlines()) == 1
        flag = await adelegate(manager.url, "task", "list", "--ca-bundle", str(ca))
        assert flag.returncode == ExitCode.OK, flag.stderr
        env = await adelegate(manager.url, "task", "list", env={"MANAGER_CA_BUNDLE": str(ca)})
        assert env.returncode == ExitCode.OK, env.stderr


def test_token_create_without_a_manager_says_what_to_set(tmp_path: Path) -> None:
    from cli.manager_cmd import LOCAL_MANAGER, _answers

    if _answers(LOCAL_MANAGER):
        pytest.skip(f"something answers at {LOCAL_MANAGER}: it would be used")
    proc = delegate("", "manager", "token", "create", "--account", "a", cwd=tmp_path,
                    env={"MANAGER_HOST_AND_PORT": None})  # type: ignore[dict-item]
    assert proc.returncode == ExitCode.USAGE
    assert "pass --manager URL or set MANAGER_HOST_AND_PORT" in proc.stderr
    assert f"nothing answers at {LOCAL_MANAGER}" in proc.stderr
