"""``python -m cli sandbox`` serves until SIGTERM and prints the exports to paste."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

from sandbox import client

ROOT = Path(__file__).resolve().parents[2]


def test_runs_until_sigterm() -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "cli", "sandbox", "--port", "0", "--tick", "0.05"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        assert process.stdout is not None
        exports: dict[str, str] = {}
        for line in process.stdout:  # blocks until the server printed its address
            if line.startswith("export "):
                name, _, value = line.removeprefix("export ").strip().partition("=")
                exports[name] = value
            if "AWS_SECRET_ACCESS_KEY" in exports:
                break
        assert exports["AWS_ACCESS_KEY_ID"] == "testing"
        ecs = client("ecs", exports["AWS_ENDPOINT_URL"], exports["AWS_REGION"])
        assert ecs.create_cluster(clusterName="cli")["cluster"]["status"] == "ACTIVE"
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=20) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        for stream in (process.stdout, process.stderr):
            if stream is not None:
                stream.close()
