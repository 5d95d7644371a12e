"""Health and metrics on a small HTTP port, apart from the manager connection.

* ``/healthz`` — liveness: the event loop answers (200).
* ``/readyz`` — readiness: registered, and a heartbeat answered within two intervals;
  draining or disconnected is 503, with the reason in the body.
* ``/metrics`` — Prometheus text format (prometheus-client).

The HTTP parsing is h11's (already installed with httpx); this module only routes.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING

import h11
import structlog
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

if TYPE_CHECKING:
    from agent.app import Delegate

log = structlog.get_logger("agent.health")


class DelegateMetrics:
    """Counters fed as things happen, plus a collector that reads state at scrape time."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.task_duration = Histogram(
            "delegate_task_duration_seconds", "Time from task start to its result.",
            ["type", "status"], registry=self.registry,
            buckets=(0.1, 0.5, 1, 5, 15, 60, 300, 900, 1800, 3600),
        )
        self.aws_calls = Counter("delegate_aws_api_calls", "AWS API calls made by tasks.",
                                 ["service", "operation"], registry=self.registry)
        self.aws_throttles = Counter("delegate_aws_api_throttles",
                                     "AWS API calls answered with a throttling error.",
                                     ["service", "operation"], registry=self.registry)
        self.loop_lag = 0.0

    def observe_aws_call(self, service: str, operation: str, throttled: bool) -> None:
        self.aws_calls.labels(service, operation).inc()
        if throttled:
            self.aws_throttles.labels(service, operation).inc()

    def observe_task(self, task_type: str, status: str, seconds: float) -> None:
        self.task_duration.labels(task_type, status).observe(seconds)


class _StateCollector(Collector):
    def __init__(self, delegate: Delegate, metrics: DelegateMetrics) -> None:
        self._d = delegate
        self._m = metrics

    def collect(self) -> Iterator[Metric]:
        d = self._d
        running = GaugeMetricFamily("delegate_tasks_running", "Tasks running now, by type.",
                                    labels=["type"])
        # Every known type, zeros included: an absent series cannot be told from a scrape
        # that failed, and alerts on "running == 0" need the zero.
        by_type = dict.fromkeys(d.registry.names(), 0)
        for task_type in d.runner.running_types():
            by_type[task_type] = by_type.get(task_type, 0) + 1
        for task_type, n in sorted(by_type.items()):
            running.add_metric([task_type], n)
        yield running
        finished = CounterMetricFamily("delegate_tasks_finished", "Tasks finished.",
                                       labels=["type", "status"])
        for (task_type, status), n in sorted(d.runner.stats.finished.items()):
            finished.add_metric([task_type, status], n)
        yield finished
        yield CounterMetricFamily("delegate_reconnects", "Reconnections to the manager.",
                                  value=d.session.reconnects)
        age = GaugeMetricFamily("delegate_heartbeat_age_seconds",
                                "Seconds since the manager last answered a heartbeat.")
        last = d.session.last_heartbeat_ack
        age.add_metric([], time.monotonic() - last if last is not None else float("nan"))
        yield age
        yield GaugeMetricFamily("delegate_connected", "1 when registered with the manager.",
                                value=1.0 if d.session.registered.is_set() else 0.0)
        yield CounterMetricFamily("delegate_log_lines_sent",
                                  "Task log lines the manager has confirmed.",
                                  value=d.outbox.lines_acked)
        yield GaugeMetricFamily("delegate_log_lines_buffered",
                                "Task log lines waiting for the manager's confirmation.",
                                value=d.outbox.lines_buffered)
        yield CounterMetricFamily("delegate_log_lines_dropped",
                                  "Task log lines given up because the manager no longer "
                                  "wanted them (a task it had finished or lost).",
                                  value=d.outbox.lines_dropped)
        yield GaugeMetricFamily("delegate_task_messages_buffered",
                                "Task messages (log batches, unit states, events, results) "
                                "waiting for the manager's ack.", value=d.outbox.buffered)
        yield GaugeMetricFamily("delegate_event_loop_lag_seconds",
                                "How late the event loop ran a timer, last sample.",
                                value=self._m.loop_lag)


class HealthServer:
    def __init__(self, delegate: Delegate, host: str, port: int) -> None:
        self._d = delegate
        self._host = host
        self._port = port
        self.metrics = delegate.metrics
        self.metrics.registry.register(_StateCollector(delegate, self.metrics))
        self._server: asyncio.Server | None = None
        self._lag_task: asyncio.Task[None] | None = None

    @property
    def port(self) -> int:
        assert self._server is not None
        return int(self._server.sockets[0].getsockname()[1])

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, self._host, self._port)
        self._lag_task = asyncio.create_task(self._measure_lag(), name="health:lag")
        log.info("health endpoint listening", host=self._host, port=self.port)

    async def stop(self) -> None:
        if self._lag_task is not None:
            self._lag_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._lag_task
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _measure_lag(self) -> None:
        interval = 0.5
        while True:
            before = time.monotonic()
            await asyncio.sleep(interval)
            self.metrics.loop_lag = max(0.0, time.monotonic() - before - interval)

    def _route(self, target: str) -> tuple[int, str, bytes]:
        path = target.split("?", 1)[0]
        if path in ("/healthz", "/livez"):
            return 200, "text/plain", b"ok\n"
        if path == "/readyz":
            ready, reason = self._readiness()
            return (200 if ready else 503), "text/plain", (reason + "\n").encode()
        if path == "/metrics":
            return 200, "text/plain; version=0.0.4", generate_latest(self.metrics.registry)
        return 404, "text/plain", b"not found\n"

    def _readiness(self) -> tuple[bool, str]:
        s = self._d.session
        if s.draining:
            return False, "draining"
        if not s.registered.is_set():
            return False, "not connected to the manager"
        if not s.ready:
            return False, "manager has not answered a heartbeat in two intervals"
        return True, "ready"

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        conn = h11.Connection(h11.SERVER)
        try:
            while True:
                event = conn.next_event()
                if event is h11.NEED_DATA:
                    data = await asyncio.wait_for(reader.read(65536), timeout=10)
                    conn.receive_data(data)
                    if not data:
                        return
                    continue
                if isinstance(event, h11.Request):
                    status, ctype, body = self._route(event.target.decode(errors="replace"))
                    headers = [("content-type", ctype), ("content-length", str(len(body))),
                               ("connection", "close")]
                    writer.write(conn.send(h11.Response(status_code=status, headers=headers)))
                    if event.method != b"HEAD":
                        writer.write(conn.send(h11.Data(data=body)))
                    writer.write(conn.send(h11.EndOfMessage()))
                    await writer.drain()
                    return
                return
        except (h11.RemoteProtocolError, TimeoutError, ConnectionError):
            return
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()
