"""Bad settings stop the real ``delegate run`` process with one line and exit code 2,
before anything connects — never a traceback, never a failure that waits for later."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.ops.proc import delegate_env, free_port

TOKEN = "edt.abc123.0123456789abcdefghijklmnopqrstuvwxyz0123456"
EXIT_CONFIG = 2


def run_delegate(**env: str) -> subprocess.CompletedProcess[str]:
    manager = f"http://127.0.0.1:{free_port()}"  # nothing listens: must not get that far
    full = delegate_env(manager, TOKEN) | env
    return subprocess.run([sys.executable, "-m", "cli", "run"], env=full, text=True,
                          capture_output=True, timeout=60, check=False)


def the_error(proc: subprocess.CompletedProcess[str]) -> str:
    """The one error line; fails on a traceback or on anything that tried to connect."""
    out = proc.stdout + proc.stderr
    assert "Traceback" not in out, out
    assert "manager connection lost" not in out, out
    errors = [ln for ln in out.splitlines() if ln.startswith("delegate: configuration error:")]
    assert len(errors) == 1, out
    assert proc.returncode == EXIT_CONFIG, out
    assert TOKEN not in out
    return errors[0]


@pytest.mark.parametrize(("url", "expected"), [
    ("http://127.0.0.1:99999", "MANAGER_HOST_AND_PORT: 'http://127.0.0.1:99999' has port "
                               "'99999'; a port is a number from 1 to 65535"),
    ("http://127.0.0.1:http", "has port 'http'; a port is a number from 1 to 65535"),
])
def test_a_manager_port_out_of_range(url: str, expected: str) -> None:
    assert expected in the_error(run_delegate(MANAGER_HOST_AND_PORT=url))


def test_a_health_port_in_use() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        line = the_error(run_delegate(HEALTH_PORT=str(port)))
    assert f"HEALTH_PORT: cannot listen on 127.0.0.1:{port} (" in line
    assert "choose another HEALTH_PORT (0 picks a free one) or unset it" in line


@pytest.mark.parametrize(("make", "expected"), [
    (lambda tmp: tmp / "missing", "does not exist; create it"),
    (lambda tmp: (tmp / "a-file").write_text("x") and tmp / "a-file", "is not a directory"),
    (lambda tmp: Path("/proc"), "DELEGATE_STATE_DIR: cannot write in /proc ("),
])
def test_a_state_dir_that_cannot_hold_spilled_messages(
        tmp_path: Path, make: object, expected: str) -> None:
    path = make(tmp_path)  # type: ignore[operator]
    line = the_error(run_delegate(DELEGATE_STATE_DIR=str(path)))
    assert expected in line
    assert "unset DELEGATE_STATE_DIR or point it at a writable directory" in line


def test_a_ca_bundle_that_is_not_pem(tmp_path: Path) -> None:
    bundle = tmp_path / "ca.pem"
    bundle.write_text("not a certificate\n")
    line = the_error(run_delegate(MANAGER_CA_BUNDLE=str(bundle)))
    assert f"MANAGER_CA_BUNDLE: {bundle} is not a PEM bundle of CA certificates" in line


def test_a_writable_state_dir_is_accepted(tmp_path: Path) -> None:
    from agent.config import load_settings

    settings = load_settings(account_id="a", delegate_token=TOKEN,
                             manager_url="https://m.example.com", state_dir=str(tmp_path))
    assert settings.state_dir == tmp_path
    assert list((tmp_path / "outbox").iterdir()) == []  # the write check left nothing
