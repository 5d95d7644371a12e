"""`delegate demo`, the README's first command, as a user runs it: a real process, exit 0
only when every expected outcome was seen, and the outcomes printed."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest

from cli.demo import _keep_running_notice
from sandbox import Sandbox
from sandbox.seed import seed


@pytest.mark.timeout(180)
def test_demo_runs_end_to_end_and_exits_0() -> None:
    proc = subprocess.run([sys.executable, "-m", "cli", "demo", "--tick", "0.05"],
                          capture_output=True, text=True, timeout=170,
                          env={**os.environ, "NO_COLOR": "1"})
    out = proc.stdout
    assert proc.returncode == 0, out[-4000:] + proc.stderr[-4000:]
    assert "All " in out and "expected outcomes seen." in out
    assert " Deployment Successful." in out
    assert "# AWS Event:" in out
    assert "deployment failed: tasks failed to start." in out
    assert "prod listener :80 forwarded to target1 before the swap, to target2 after it" in out
    assert "Canary service myappCanary deleted" in out
    if shutil.which("terraform"):  # act 8: the apply's outputs, the sensitive one hidden
        assert 'Output cluster_name = "ecs-tutorial"' in out
        assert "Output connection_token = (sensitive)" in out
    assert "Swapping Successful." in out or "Successfully updated Prod Listener" in out
    # Services and environments (cli/demo_services.py): which override applied, shown.
    assert ("serviceDefinition: from override production-webapp (environment production) "
            "revision 1") in out
    assert "webapp in production (ecs-prod): 2 task(s), cpu 512, LOG_LEVEL=warn" in out
    assert "FAIL " not in out


@pytest.mark.parametrize("command", ["demo", "sandbox"])
def test_without_the_sandbox_extra_the_fix_is_named(command: str) -> None:
    # moto blocked as if it were not installed.
    code = (f"import sys; sys.modules['moto'] = None; sys.argv = ['delegate', {command!r}]; "
            "from cli.main import main; main()")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 2  # an install (input) error, cli/exitcodes.py
    assert "pip install 'ecs-delegate[sandbox]'" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_keep_prints_the_placeholder_values_and_region_and_account_exports(
        sandbox: Sandbox, capsys: pytest.CaptureFixture[str]) -> None:
    # What `delegate demo --keep` prints once the steps are done, on a real seeded sandbox
    # (the whole demo run is covered above; running it twice would double the cost).
    sandbox.reset()
    values = seed(sandbox.endpoint_url, sandbox.region)
    env = {**sandbox.environment(), "MANAGER_HOST_AND_PORT": "http://127.0.0.1:1",
           "MANAGER_ADMIN_TOKEN": "admin"}
    _keep_running_notice(env, values)
    out = capsys.readouterr().out
    for placeholder in ("<Prod Listener ARN>", "<Stage Listener ARN>",
                        "<Blue Target Group ARN>", "<Green Target Group ARN>"):
        assert any(line.split() == [*placeholder.split(), values[placeholder]]
                   for line in out.splitlines()), placeholder
    assert f"  export AWS_DEFAULT_REGION={sandbox.region}\n" in out
    assert "  export ACCOUNT_ID=123456789012\n" in out
    assert f"  export AWS_ENDPOINT_URL={sandbox.endpoint_url}\n" in out
