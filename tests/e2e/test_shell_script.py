"""``shell.script`` end to end: the real manager process, a real delegate, real child
processes, the sandbox as AWS. Output streams into the Execute unit with secrets masked,
named variables come back as outputs, the AWS CLI reaches the step's infrastructure, a
failing script fails with its exit code and last lines, and abort leaves no process of
the script behind — background children included."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from testkit.sandbox_fixture import Aws
from testkit.stack import DelegateRunner, ManagerApi, ManagerProcess, log_texts, wait_for


def shell_task(script: str, **params: Any) -> dict[str, Any]:
    return {"type": "shell.script", "selectors": ["ecs"], "timeout": params.pop("timeout", "60s"),
            "secrets": params.pop("secrets", {}),
            "params": {"script": script, "killGrace": "2s", **params}}


def _alive(pid: int) -> bool:
    """True while ``pid`` runs (a zombie waiting for its parent to reap it has ended)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False
    return state != "Z"


async def test_output_is_streamed_masked_and_variables_come_back(
        aws: Aws, api: ManagerApi, aws_delegate: DelegateRunner) -> None:
    script = ('echo "hello from $GREETING_TARGET"\n'
              'echo "the password is $DB_PASSWORD"\n'
              'echo "to stderr" >&2\n'
              'SERVICE_URL="https://svc.example/$ECS_CLUSTER"\n'
              'MULTI="$(printf "one\\ntwo")"\n')
    task_id = await api.submit(shell_task(
        script, region=aws.region, cluster=aws.cluster,
        environmentVariables={"GREETING_TARGET": "<+env.name>",
                              "DB_PASSWORD": '<+secrets.getValue("db")>'},
        outputVariables=["SERVICE_URL", "MULTI", "NEVER_SET"],
        secrets={"db": "s3cr3t-value"}) | {"context": {"env": {"name": "staging"}}})
    done = await api.wait_finished(task_id, timeout=60)
    texts = log_texts(await api.logs(task_id))
    assert done["status"] == "SUCCESS", (done["error"], texts)
    assert "hello from staging" in texts
    assert "to stderr" in texts
    assert not any("s3cr3t-value" in t for t in texts)
    assert any("the password is" in t and "s3cr3t" not in t for t in texts)
    assert done["output"]["SERVICE_URL"] == f"https://svc.example/{aws.cluster}"
    assert done["output"]["MULTI"] == "one\ntwo"
    assert "NEVER_SET" not in done["output"]
    assert any("did not set output variable(s): NEVER_SET" in t for t in texts)
    assert [u["name"] for u in done["units"]] == ["Execute"]


async def test_the_aws_cli_reaches_the_steps_infrastructure(
        aws: Aws, api: ManagerApi, aws_delegate: DelegateRunner) -> None:
    script = ("aws ecs describe-clusters --clusters \"$ECS_CLUSTER\" "
              "--query 'clusters[0].status' --output text\n"
              "echo \"region=$AWS_DEFAULT_REGION\"\n"
              "test -z \"$DELEGATE_TOKEN\" && echo 'no delegate token here'\n")
    task_id = await api.submit(shell_task(script, region=aws.region, cluster=aws.cluster))
    done = await api.wait_finished(task_id, timeout=60)
    texts = log_texts(await api.logs(task_id))
    assert done["status"] == "SUCCESS", (done["error"], texts)
    assert "ACTIVE" in texts
    assert f"region={aws.region}" in texts
    assert "no delegate token here" in texts


async def test_a_failing_script_fails_with_its_exit_code_and_last_lines(
        api: ManagerApi, aws_delegate: DelegateRunner) -> None:
    task_id = await api.submit(shell_task("echo 'about to fail'\nexit 3\n"))
    done = await api.wait_finished(task_id, timeout=60)
    assert done["status"] == "FAILED"
    assert "exited with 3" in done["error"] and "about to fail" in done["error"]
    assert done["output"]["exitCode"] == 3


async def test_abort_stops_the_whole_process_group(
        api: ManagerApi, aws_delegate: DelegateRunner, tmp_path: Path) -> None:
    pids = tmp_path / "pids"
    # The script ignores SIGTERM, so only the SIGKILL after killGrace ends it; its
    # background child would outlive a kill of the script alone.
    script = (f"trap '' TERM\nsleep 300 &\necho $! > {pids}.child\necho $$ > {pids}\n"
              "echo started\nwait\n")
    task_id = await api.submit(shell_task(script))
    await wait_for(lambda: Path(f"{pids}.child").exists() and pids.exists()
                   and pids.read_text().strip() != "", timeout=30, what="script started")
    script_pid, child_pid = (int(p.read_text()) for p in (pids, Path(f"{pids}.child")))
    assert _alive(script_pid) and _alive(child_pid)
    await api.abort(task_id)
    done = await api.wait_finished(task_id, timeout=30)
    assert done["status"] == "ABORTED"
    await wait_for(lambda: not _alive(script_pid) and not _alive(child_pid), timeout=10,
                   what="the script and its child gone")


async def test_background_children_do_not_outlive_a_finished_script(
        api: ManagerApi, aws_delegate: DelegateRunner, tmp_path: Path) -> None:
    child = tmp_path / "child"
    task_id = await api.submit(shell_task(f"sleep 300 &\necho $! > {child}\necho done\n"))
    done = await api.wait_finished(task_id, timeout=30)
    assert done["status"] == "SUCCESS", done["error"]
    await wait_for(lambda: not _alive(int(child.read_text())), timeout=10,
                   what="the background child stopped")


async def test_a_timed_out_script_is_stopped(
        api: ManagerApi, aws_delegate: DelegateRunner, tmp_path: Path) -> None:
    pid_file = tmp_path / "pid"
    task_id = await api.submit(shell_task(f"echo $$ > {pid_file}\nsleep 300\n",
                                          timeout="2s"))
    done = await api.wait_finished(task_id, timeout=30)
    assert done["status"] == "TIMED_OUT"
    await wait_for(lambda: not _alive(int(pid_file.read_text())), timeout=10,
                   what="the timed-out script gone")


async def test_a_delegate_without_shell_steps_does_not_offer_them(
        api: ManagerApi, manager: ManagerProcess, token: str,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DELEGATE_SHELL_STEPS", "false")
    async with DelegateRunner(manager.url, token, tags=("locked",), name="locked") as d:
        await d.registered()
        assert "shell.script" not in d.delegate.registry.names()
        task = shell_task("echo hi") | {"selectors": ["locked"]}
        task_id = await api.submit(task)

        async def reason() -> str | None:
            why = (await api.task(task_id)).get("waiting_reason") or ""
            return why if "shell.script" in why else None
        why = await wait_for(reason, timeout=20, what="a waiting reason")
        assert "supports task type 'shell.script'" in why
        await api.abort(task_id)


async def test_a_flood_of_output_arrives_whole(
        api: ManagerApi, aws_delegate: DelegateRunner) -> None:
    # 20,000 lines as fast as the shell can print them, then 150 KB without a newline.
    task_id = await api.submit(shell_task(
        "seq 1 20000\nhead -c 150000 /dev/zero | tr '\\0' x\n"))
    done = await api.wait_finished(task_id, timeout=90)
    assert done["status"] == "SUCCESS", done["error"]
    texts = log_texts(await api.logs(task_id))
    numbers = [t for t in texts if t.isdigit()]
    assert numbers == [str(i) for i in range(1, 20001)]
    pieces = [t for t in texts if t and set(t) == {"x"}]
    assert sum(map(len, pieces)) == 150000 and max(map(len, pieces)) <= 64 * 1024
