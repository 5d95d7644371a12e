"""Health and metrics of a real ``delegate run`` process on HEALTH_PORT=0: readiness
follows the manager connection (connecting, ready, manager gone, manager frozen, back),
liveness stays up, and /metrics is Prometheus text that prometheus-client parses."""

from __future__ import annotations

import os
import re
import signal
from collections.abc import Callable
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from testkit.sandbox_fixture import Aws
from testkit.stack import ManagerApi, ManagerProcess, wait_for

from .conftest import HEARTBEAT, MANAGER_ARGS, exit_of, health_port
from .deployments import rolling_deploy
from .proc import DelegateProcess, delegate_env, free_port

# Readiness is "a heartbeat answered within two intervals"; the allowance covers the
# delegate's one-second slack and a loaded CI machine.
GONE_WITHIN = 2 * HEARTBEAT + 1 + 2


async def _ready(health: httpx.AsyncClient) -> tuple[int, str]:
    r = await health.get("/readyz")
    return r.status_code, r.text.strip()


async def _becomes(health: httpx.AsyncClient, status: int, *, timeout: float = 20.0,
                   what: str) -> str:
    async def check() -> str | None:
        code, text = await _ready(health)
        return text if code == status else None

    text: str = await wait_for(check, timeout=timeout, interval=0.05, what=what)
    return text


async def test_readiness_follows_the_manager_connection(
        tmp_path: Path, spawn: Callable[..., DelegateProcess]) -> None:
    manager = ManagerProcess(tmp_path, port=free_port(), extra_args=MANAGER_ARGS)
    # The token is made by a manager on the same database before the delegate starts,
    # then that manager stops: the delegate starts while nothing listens.
    manager.start()
    async with manager.api() as client:
        token = await ManagerApi(client).create_token("acme")
    manager.stop()
    url = f"http://127.0.0.1:{manager.port}"
    proc = spawn(delegate_env(url, token))
    try:
        port = await health_port(proc)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as health:
            # connecting: alive, not ready
            assert (await health.get("/healthz")).status_code == 200
            assert await _ready(health) == (503, "not connected to the manager")
            await wait_for(lambda: proc.first("manager connection lost; reconnecting"),
                           what="a failed connection attempt")
            assert await _ready(health) == (503, "not connected to the manager")

            manager.start()
            assert await _becomes(health, 200, what="ready") == "ready"

            # manager frozen (SIGSTOP): the socket stays open, heartbeats go unanswered
            assert manager.proc is not None
            os.kill(manager.proc.pid, signal.SIGSTOP)
            try:
                text = await _becomes(health, 503, timeout=GONE_WITHIN + 2,
                                      what="not ready while the manager is frozen")
            finally:
                os.kill(manager.proc.pid, signal.SIGCONT)
            assert text == "manager has not answered a heartbeat in two intervals"
            await _becomes(health, 200, what="ready again after the manager thawed")

            # manager gone (killed): not ready within about two heartbeat intervals
            manager.kill()
            text = await _becomes(health, 503, timeout=GONE_WITHIN, what="not ready")
            assert text == "not connected to the manager"
            assert (await health.get("/healthz")).status_code == 200

            manager.start()
            await _becomes(health, 200, what="ready after the manager came back")
            metrics = _families((await health.get("/metrics")).text)
            assert _value(metrics, "delegate_reconnects_total") >= 1
            assert _value(metrics, "delegate_connected") == 1.0
            assert 0 <= _value(metrics, "delegate_heartbeat_age_seconds") < 2 * HEARTBEAT + 1
    finally:
        manager.kill()


def _families(text: str) -> dict[str, list[Sample]]:
    out: dict[str, list[Sample]] = {}
    for family in text_string_to_metric_families(text):
        out[family.name] = [*out.get(family.name, []), *family.samples]
    return out


def _value(families: dict[str, list[Sample]], sample_name: str,
           **labels: str) -> float:
    for samples in families.values():
        for s in samples:
            if s.name == sample_name and all(s.labels.get(k) == v for k, v in labels.items()):
                return float(s.value)
    raise AssertionError(f"no sample {sample_name}{labels or ''} in {sorted(families)}")


# What the issue asks to be observable, as (family, type, labels).
EXPECTED_FAMILIES = {
    "delegate_tasks_running": ("gauge", {"type"}),
    "delegate_tasks_finished": ("counter", {"type", "status"}),
    "delegate_task_duration_seconds": ("histogram", {"type", "status"}),
    "delegate_reconnects": ("counter", set()),
    "delegate_heartbeat_age_seconds": ("gauge", set()),
    "delegate_log_lines_sent": ("counter", set()),
    "delegate_log_lines_buffered": ("gauge", set()),
    "delegate_log_lines_dropped": ("counter", set()),
    "delegate_task_messages_buffered": ("gauge", set()),
    "delegate_aws_api_calls": ("counter", {"service", "operation"}),
    "delegate_aws_api_throttles": ("counter", {"service", "operation"}),
    "delegate_event_loop_lag_seconds": ("gauge", set()),
}
(README_METRICS_ROW,) = [
    line for line in (Path(__file__).resolve().parents[2] / "README.md").read_text().splitlines()
    if line.startswith("| `/metrics` |")]
NAME = re.compile(r"[a-z_][a-z0-9_]*")


async def test_a_scrape_after_a_task_counts_it(
        api: ManagerApi, manager: ManagerProcess, token: str, aws: Aws,
        spawn: Callable[..., DelegateProcess]) -> None:
    proc = spawn(delegate_env(manager.url, token, aws=aws.environment()))
    port = await health_port(proc)
    await wait_for(lambda: proc.first("registered with manager"), what="registration")
    task_id = await api.submit(rolling_deploy(aws, name="counted"))
    assert (await api.wait_finished(task_id))["status"] == "SUCCESS"

    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as health:
        # The manager reports SUCCESS on receiving the result; its acks reach the
        # delegate a moment later, and only then is nothing buffered.
        async def settled() -> httpx.Response | None:
            r = await health.get("/metrics")
            return r if "\ndelegate_task_messages_buffered 0.0\n" in r.text else None

        scrape: httpx.Response = await wait_for(settled, what="every message acked")
    assert scrape.status_code == 200
    assert scrape.headers["content-type"].startswith("text/plain; version=0.0.4")
    text = scrape.text
    assert 'delegate_tasks_finished_total{status="SUCCESS",type="ecs.rolling_deploy"} 1.0' \
        in text, text
    families = {f.name: f for f in text_string_to_metric_families(text)}
    for name, (kind, labels) in EXPECTED_FAMILIES.items():
        assert name in families, f"{name} missing from:\n{text}"
        family = families[name]
        assert family.type == kind, (name, family.type)
        for sample in family.samples:
            assert NAME.fullmatch(sample.name), sample.name
            assert set(sample.labels) - {"le", "quantile"} <= labels, (name, sample.labels)
        if kind == "counter":
            assert all(s.name.endswith(("_total", "_created")) for s in family.samples), name

    # The README's /metrics row names exactly what a scrape shows.
    documented = set(re.findall(r"`(delegate_[a-z_]+)", README_METRICS_ROW))
    # prometheus-client's `_created` companions are its own, not ours to document.
    exposed = {f"{f.name}_total" if f.type == "counter" else f.name
               for f in families.values() if not f.name.endswith("_created")}
    assert documented == exposed, (documented ^ exposed)

    samples = _families(text)
    assert _value(samples, "delegate_task_duration_seconds_count", type="ecs.rolling_deploy",
                  status="SUCCESS") == 1.0
    assert _value(samples, "delegate_aws_api_calls_total", service="ecs",
                  operation="CreateService") >= 1
    assert _value(samples, "delegate_log_lines_sent_total") > 0
    assert _value(samples, "delegate_task_messages_buffered") == 0
    assert _value(samples, "delegate_log_lines_buffered") == 0
    assert _value(samples, "delegate_log_lines_dropped_total") == 0
    assert _value(samples, "delegate_tasks_running", type="ecs.rolling_deploy") == 0
    assert _value(samples, "delegate_tasks_running", type="aws.validate_connector") == 0, \
        "a type never run shows 0, not nothing"

    proc.signal(signal.SIGTERM)
    code, _ = await exit_of(proc, timeout=20)
    assert code == 0, proc.text()
