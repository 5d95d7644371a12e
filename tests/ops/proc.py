"""``delegate run`` as a real child process: its JSON process log read line by line, its
health port read from that log, real signals."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

HEALTH_LISTENING = "health endpoint listening"


def free_port() -> int:
    """A loopback port that was free a moment ago (for a manager that starts later)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def delegate_env(manager_url: str, token: str, *, account: str = "acme",
                 name: str = "ops-1", tags: str = "ops", grace: str = "30s",
                 aws: Mapping[str, str] | None = None, **extra: str) -> dict[str, str]:
    """The environment a container would get: the document's variables, nothing else of
    this test process but PATH (so a secret of the test run cannot leak in)."""
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "ACCOUNT_ID": account,
        "DELEGATE_TOKEN": token,
        "DELEGATE_NAME": name,
        "DELEGATE_TAGS": tags,
        "MANAGER_HOST_AND_PORT": manager_url,
        "HEALTH_PORT": "0",
        "HEALTH_HOST": "127.0.0.1",
        "SHUTDOWN_GRACE": grace,
        "LOG_FORMAT": "json",
        "RECONNECT_MAX_DELAY": "0.5s",
        "PYTHONUNBUFFERED": "1",
        "AWS_MAX_ATTEMPTS": "2",
        **(aws or {}),
        **extra,
    }
    return env


class DelegateProcess:
    """One ``delegate run`` process. ``command`` defaults to ``python -m cli run`` from
    this interpreter; the wheel test passes tini, setpriv and the venv's entry point."""

    def __init__(self, env: Mapping[str, str], log_path: Path, *,
                 command: Sequence[str] | None = None, cwd: Path | None = None,
                 preexec_fn: Callable[[], None] | None = None) -> None:
        self.env = dict(env)
        self.command = list(command or [sys.executable, "-m", "cli", "run"])
        self.cwd = cwd
        self.log_path = log_path
        self.preexec_fn = preexec_fn
        self.proc: subprocess.Popen[bytes] | None = None
        self.records: list[dict[str, Any]] = []
        self.raw: list[str] = []
        self._lock = threading.Lock()
        self._reader: threading.Thread | None = None

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> DelegateProcess:
        self.proc = subprocess.Popen(self.command, env=self.env, cwd=self.cwd,
                                     stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, preexec_fn=self.preexec_fn)
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        return self

    def _read(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        with self.log_path.open("a") as sink:
            for raw in self.proc.stdout:
                line = raw.decode(errors="replace").rstrip("\n")
                sink.write(line + "\n")
                sink.flush()
                try:
                    record = json.loads(line)
                except ValueError:
                    record = None
                with self._lock:
                    self.raw.append(line)
                    if isinstance(record, dict):
                        self.records.append(record)

    def signal(self, sig: signal.Signals = signal.SIGTERM) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)

    @property
    def returncode(self) -> int | None:
        return None if self.proc is None else self.proc.poll()

    def wait(self, timeout: float) -> int:
        assert self.proc is not None
        code = self.proc.wait(timeout=timeout)
        if self._reader is not None:
            self._reader.join(timeout=5)
        return code

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)
        if self._reader is not None:
            self._reader.join(timeout=5)
        if self.proc is not None and self.proc.stdout is not None:
            self.proc.stdout.close()

    # ------------------------------------------------------------------ the log

    def events(self, event: str) -> list[dict[str, Any]]:
        with self._lock:
            return [r for r in self.records if r.get("event") == event]

    def first(self, event: str) -> dict[str, Any] | None:
        found = self.events(event)
        return found[0] if found else None

    def index(self, event: str) -> int:
        with self._lock:
            for i, r in enumerate(self.records):
                if r.get("event") == event:
                    return i
        raise AssertionError(f"no {event!r} line in the process log:\n{self.text()}")

    def text(self) -> str:
        with self._lock:
            return "\n".join(self.raw)

    def health_port(self) -> int | None:
        record = self.first(HEALTH_LISTENING)
        return int(record["port"]) if record else None

    def wait_exit(self, timeout: float) -> tuple[int, float]:
        """(exit code, seconds it took) — fails with the process log at the deadline."""
        started = time.monotonic()
        try:
            code = self.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"delegate still running after {timeout}s; its log:\n"
                                 f"{self.text()}") from None
        return code, time.monotonic() - started
