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
from collections.abc import Callable, Iterator

import h11
import structlog
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from agent.errors import HealthPortError
from agent.status import DelegateStatus

log = structlog.get_logger("agent.health")

StatusSource = Callable[[], DelegateStatus]


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

    def observe_aws_call(self, service: str, operation: str, throttled: bool) -> None:
        self.aws_calls.labels(service, operation).inc()
        if throttled:
            self.aws_throttles.labels(service, operation).inc()

    def observe_task(self, task_type: str, status: str, seconds: float) -> None:
        self.task_duration.labels(task_type, status).observe(seconds)


class _StatusCollector(Collector):
    """Reads one frozen :class:`DelegateStatus` per scrape."""

    def __init__(self, status: StatusSource) -> None:
        self._status = status

    def collect(self) -> Iterator[Metric]:
        st = self._status()
        running = GaugeMetricFamily("delegate_tasks_running", "Tasks running now, by type.",
                                    labels=["type"])
        # Every known type, zeros included: an absent series cannot be told from a scrape
        # that failed, and alerts on "running == 0" need the zero.
        by_type = dict.fromkeys(st.task_types, 0)
        for task_type in st.running_types:
            by_type[task_type] = by_type.get(task_type, 0) + 1
        for task_type, n in sorted(by_type.items()):
            running.add_metric([task_type], n)
        yield running
        finished = CounterMetricFamily("delegate_tasks_finished", "Tasks finished.",
                                       labels=["type", "status"])
        for (task_type, status), n in sorted(st.finished.items()):
            finished.add_metric([task_type, status], n)
        yield finished
        yield CounterMetricFamily("delegate_reconnects", "Reconnections to the manager.",
                                  value=st.reconnects)
        age = GaugeMetricFamily("delegate_heartbeat_age_seconds",
                                "Seconds since the manager last answered a heartbeat.")
        age.add_metric([], st.heartbeat_age if st.heartbeat_age is not None else float("nan"))
        yield age
        yield GaugeMetricFamily("delegate_connected", "1 when registered with the manager.",
                                value=1.0 if st.connected else 0.0)
        yield from _message_metrics(st)


def _message_metrics(st: DelegateStatus) -> Iterator[Metric]:
    yield CounterMetricFamily("delegate_log_lines_sent",
                              "Task log lines the manager has confirmed.", value=st.lines_sent)
    yield GaugeMetricFamily("delegate_log_lines_buffered",
                            "Task log lines waiting for the manager's confirmation.",
                            value=st.lines_buffered)
    yield CounterMetricFamily("delegate_log_lines_dropped",
                              "Task log lines given up because the manager no longer "
                              "wanted them (a task it had finished or lost).",
                              value=st.lines_dropped)
    yield GaugeMetricFamily("delegate_task_messages_buffered",
                            "Task messages (log batches, unit states, events, results) "
                            "waiting for the manager's ack.", value=st.messages_buffered)
    yield GaugeMetricFamily("delegate_event_loop_lag_seconds",
                            "How late the event loop ran a timer, last sample.",
                            value=st.loop_lag)


class HealthServer:
    """Listens at :meth:`open` (so a port in use fails start-up at once) and serves in
    :meth:`serve` until cancelled (a task of the delegate's supervisor)."""

    def __init__(self, status: StatusSource, metrics: DelegateMetrics, host: str,
                 port: int) -> None:
        self._status = status
        self._host = host
        self._port = port
        self.metrics = metrics
        self.metrics.registry.register(_StatusCollector(status))
        self._server: asyncio.Server | None = None

    @property
    def port(self) -> int:
        assert self._server is not None
        return int(self._server.sockets[0].getsockname()[1])

    async def open(self) -> None:
        try:
            self._server = await asyncio.start_server(self._handle, self._host, self._port,
                                                      start_serving=False)
        except OSError as exc:
            raise HealthPortError(
                f"HEALTH_PORT: cannot listen on {self._host}:{self._port} "
                f"({exc.strerror or exc}); choose another HEALTH_PORT (0 picks a free one) "
                "or unset it") from exc
        log.info("health endpoint listening", host=self._host, port=self.port)

    async def serve(self) -> None:
        assert self._server is not None
        try:
            await self._server.serve_forever()
        finally:
            self._server.close()

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
        st = self._status()
        return st.ready, st.readiness

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
