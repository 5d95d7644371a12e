"""INIT_SCRIPT runs once before the delegate registers; its output is in the process log;
a failing script stops start-up with a clear message and exit code 4."""

from __future__ import annotations

import signal
from collections.abc import Callable

from cli.run import EXIT_INIT_SCRIPT
from testkit.stack import ManagerApi, ManagerProcess, wait_for

from .conftest import died, exit_of
from .proc import DelegateProcess, delegate_env


async def test_a_passing_script_runs_before_registration_with_its_output_logged(
        api: ManagerApi, manager: ManagerProcess, token: str,
        spawn: Callable[..., DelegateProcess]) -> None:
    script = 'echo "installing tools"; echo "a warning" >&2; test -n "$ACCOUNT_ID"'
    proc = spawn(delegate_env(manager.url, token, INIT_SCRIPT=script))
    await wait_for(lambda: proc.first("registered with manager") or died(proc),
                   what="registration")

    lines = [r["line"] for r in proc.events("init script output")]
    assert sorted(lines) == ["a warning", "installing tools"]
    assert proc.index("INIT_SCRIPT finished") < proc.index("registered with manager")
    assert [d["name"] for d in await api.delegates()] == ["ops-1"]
    proc.signal(signal.SIGTERM)
    assert (await exit_of(proc, timeout=20))[0] == 0


async def test_a_failing_script_stops_start_up_with_exit_4(
        api: ManagerApi, manager: ManagerProcess, token: str,
        spawn: Callable[..., DelegateProcess]) -> None:
    script = "echo 'fetching CA bundle'; echo 'curl: (6) Could not resolve host' >&2; exit 6"
    proc = spawn(delegate_env(manager.url, token, INIT_SCRIPT=script))
    code, _ = await exit_of(proc, timeout=30)

    assert code == EXIT_INIT_SCRIPT == 4, proc.text()
    lines = [r["line"] for r in proc.events("init script output")]
    assert sorted(lines) == ["curl: (6) Could not resolve host", "fetching CA bundle"]
    failed = proc.first("init script failed; not starting")
    assert failed is not None, proc.text()
    assert failed["level"] == "error"
    assert failed["error"] == ("INIT_SCRIPT exited with code 6; fix the script or unset "
                               "INIT_SCRIPT (its output is in the lines above)")
    assert not proc.events("registered with manager")
    assert await api.delegates() == [], "a delegate whose INIT_SCRIPT failed registered"



async def test_sigterm_during_the_script_stops_start_up_at_once(
        api: ManagerApi, manager: ManagerProcess, token: str,
        spawn: Callable[..., DelegateProcess]) -> None:
    proc = spawn(delegate_env(manager.url, token,
                              INIT_SCRIPT="echo 'waiting for the proxy'; sleep 300"))
    await wait_for(lambda: proc.events("init script output") or died(proc),
                   what="the script to start")
    proc.signal(signal.SIGTERM)
    code, _ = await exit_of(proc, timeout=10)
    assert code == 0, proc.text()
    assert proc.first("stopped during INIT_SCRIPT; not starting") is not None
    assert await api.delegates() == []
