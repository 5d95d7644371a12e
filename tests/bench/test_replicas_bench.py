"""bench/replicas.py runs end to end at a tiny size (one manager on SQLite, three
replicas on PostgreSQL behind HAProxy) and its JSON says what the README's table says:
every task started once, and the killed replica's delegates registered again."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.timeout(240)


def test_the_replicas_benchmark_measures_every_configuration_it_is_given() -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "replicas.py"), "--tasks", "20",
         "--latency", "5", "--delegates", "3", "--slots", "5", "--configs", "sqlite,pg3",
         "-o", "json"],
        capture_output=True, text=True, timeout=200, check=False, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    results = {r["config"]: r for r in json.loads(done.stdout)}
    assert set(results) == {"sqlite", "pg3"}
    for r in results.values():
        assert "error" not in r, r
        assert r["latency"]["n"] == 5 and r["latency"]["p99_ms"] >= r["latency"]["p50_ms"]
        for part in ("saturation", "queued"):
            assert (r[part]["never_started"], r[part]["started_twice"]) == (0, 0), r
    # the killed replica was the one holding the most of the three delegates
    assert results["pg3"]["reconnect"]["delegates_moved"] >= 1
    assert results["pg3"]["reconnect"]["restart_s"] == 0
    assert results["sqlite"]["reconnect"]["delegates_moved"] == 3
    assert results["sqlite"]["reconnect"]["restart_s"] > 0


def test_an_unknown_configuration_is_refused_with_the_choices() -> None:
    done = subprocess.run([sys.executable, str(ROOT / "bench" / "replicas.py"),
                           "--configs", "sqlite,mysql"],
                          capture_output=True, text=True, timeout=60, check=False, cwd=ROOT)
    assert done.returncode == 2
    assert "--configs: unknown mysql; choose from sqlite, pg1, pg3" in done.stderr
    assert "Traceback" not in done.stderr
