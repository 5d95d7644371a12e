"""What the client sends and how it reads answers the real manager does not give yet (or
only under faults): a fake manager on a real loopback socket that answers from a script
and records each request. The real-manager behaviour is in tests/e2e/test_cli*.py."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from cli.exitcodes import ExitCode

Answer = tuple[int, dict[str, Any]]


class FakeManager:
    """Answers each request with the next scripted (status, body) for its path."""

    def __init__(self) -> None:
        self.script: dict[str, list[Answer]] = {}
        self.seen: list[dict[str, Any]] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                path = self.path.split("?")[0]
                fake.seen.append({"method": self.command, "path": path,
                                  "headers": dict(self.headers),
                                  "body": json.loads(body) if body else None})
                status, answer = fake.script[path].pop(0)
                data = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = _answer

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> FakeManager:
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def fake() -> Iterator[FakeManager]:
    with FakeManager() as f:
        yield f


def delegate(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "MANAGER_HOST_AND_PORT": url, "MANAGER_ADMIN_TOKEN": "t"}
    return subprocess.run([sys.executable, "-m", "cli", *args], capture_output=True,
                          text=True, env=env, timeout=60)


def test_submit_retries_with_one_idempotency_key(fake: FakeManager, tmp_path: Path) -> None:
    task = tmp_path / "t.yaml"
    task.write_text("type: test.echo\naccount_id: mine\n")
    fake.script["/api/tasks"] = [(503, {"detail": "busy"}),
                                 (201, {"task_id": "task-1", "status": "QUEUED"})]
    proc = delegate(fake.url, "submit", str(task), "--no-wait", "--account", "other")
    assert proc.returncode == ExitCode.OK, proc.stderr
    assert proc.stdout.strip() == "task-1"
    keys = [r["headers"]["Idempotency-Key"] for r in fake.seen]
    assert len(keys) == 2 and keys[0] == keys[1] and len(keys[0]) == 36  # one uuid
    assert fake.seen[0]["body"]["account_id"] == "mine"  # the file's own account wins

    fake.seen.clear()
    fake.script["/api/tasks"] = [(201, {"task_id": "task-2", "status": "QUEUED"})]
    assert delegate(fake.url, "submit", str(task), "--no-wait",
                    "--idempotency-key", "k-1").returncode == 0
    assert fake.seen[0]["headers"]["Idempotency-Key"] == "k-1"


def test_a_failing_manager_is_exit_7_after_the_retries(fake: FakeManager,
                                                       tmp_path: Path) -> None:
    task = tmp_path / "t.yaml"
    task.write_text("type: test.echo\n")
    fake.script["/api/tasks"] = [(500, {"detail": "boom"})] * 3
    proc = delegate(fake.url, "submit", str(task))
    assert proc.returncode == ExitCode.UNREACHABLE
    assert "failed (500): boom" in proc.stderr
    assert len({r["headers"]["Idempotency-Key"] for r in fake.seen}) == 1


def test_rollback_of_a_superseded_execution_is_refused_then_forced(
        fake: FakeManager) -> None:
    path = "/api/executions/exe-1/rollback"
    detail = "exe-1 was superseded by exe-2, exe-3; rolling it back would delete web"
    fake.script[path] = [(409, {"detail": detail})]
    refused = delegate(fake.url, "execution", "rollback", "exe-1")
    assert refused.returncode == ExitCode.REFUSED
    assert detail in refused.stderr
    assert fake.seen[0]["body"] is None

    plan = "will restore web to task definition web:3 (desired 2)"
    fake.script[path] = [(200, {"execution_id": "exe-1", "status": "ROLLING_BACK",
                                "plan": plan})]
    forced = delegate(fake.url, "execution", "rollback", "exe-1", "--force")
    assert forced.returncode == ExitCode.OK, forced.stderr
    assert forced.stdout.splitlines()[0] == plan
    assert fake.seen[-1]["body"] == {"force": True}
