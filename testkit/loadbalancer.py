"""A real HAProxy in front of manager replicas: the one address delegates and API clients
use when the manager runs as several processes (issue 14).

HAProxy runs in the foreground (``-db``) as a child process in its own process group, on a
loopback port chosen at start, with its configuration in a temporary directory. What the
configuration does, and why:

* ``mode http`` with a long ``timeout tunnel``: HAProxy passes the websocket Upgrade
  through and then holds the tunnel open as long as the delegate's session lasts;
* health checks on ``GET /healthz`` every 250 ms (``fall 2 rise 1``), so a killed replica
  leaves the pool within about half a second and a restarted one rejoins at once;
* ``option redispatch 1`` + ``retries``: a request aimed at a server that refuses the
  connection is sent to another server instead of failing;
* ``option http-server-close``: each request opens its own server connection, so no
  request is written to a kept-alive connection of a replica that has just died (that
  one could not be retried safely: a POST may already have been received);
* ``X-Replica``: every answer names the server that gave it, so tests see the balance.

The admin socket (``show stat``) tells which servers HAProxy holds as UP or DOWN.
"""

from __future__ import annotations

import contextlib
import csv
import io
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

HAPROXY = "/usr/sbin/haproxy"
# A line of ``show sess``: "0x...: proto=tcpv4 src=127.0.0.1:59638 fe=... srv=m1 ..."
_SESSION = re.compile(r"\bsrc=[\d.]+:(?P<port>\d+) .*\bsrv=(?P<server>\S+)")
REPLICA_HEADER = "X-Replica"


class LoadBalancerError(RuntimeError):
    """HAProxy is missing, refused its configuration, or did not start; says why."""


@dataclass(frozen=True)
class Backend:
    """One server of the pool: ``name`` is what ``X-Replica`` answers with."""

    name: str
    host: str
    port: int

    @classmethod
    def parse(cls, text: str, index: int) -> Backend:
        """``host:port`` (named ``m<index>``) or ``name=host:port``."""
        name, _, address = text.rpartition("=")
        host, sep, port = address.rpartition(":")
        if not sep or not host or not port.isdigit():
            raise LoadBalancerError(
                f"backend {text!r}: expected host:port or name=host:port, e.g. 127.0.0.1:8080")
        return cls(name or f"m{index}", host, int(port))


def haproxy_binary() -> str:
    """The haproxy program: Debian's path, else PATH; a one-line error if neither."""
    if os.access(HAPROXY, os.X_OK):
        return HAPROXY
    found = shutil.which("haproxy")
    if found is None:
        raise LoadBalancerError("haproxy is not installed: `apt-get install haproxy` "
                                "(.ci/run installs it)")
    return found


def render_config(backends: Sequence[Backend], *, port: int, admin_socket: Path,
                  balance: str = "roundrobin", tunnel_timeout: str = "1h") -> str:
    """The haproxy.cfg for ``backends`` behind 127.0.0.1:``port``."""
    servers = "\n".join(
        f"    server {b.name} {b.host}:{b.port} check inter 250ms fall 2 rise 1"
        for b in backends)
    return f"""\
global
    maxconn 4096
    stats socket {admin_socket} mode 600 level admin
    log stdout format raw local0 notice

defaults
    mode http
    log global
    option httplog
    option dontlognull
    option http-server-close
    option forwardfor
    option redispatch 1
    retries 3
    timeout connect 1s
    timeout client 5m
    timeout server 5m
    timeout http-request 10s
    timeout queue 10s
    timeout check 1s
    # a delegate's websocket lives as long as its session; its heartbeats keep it busy
    timeout tunnel {tunnel_timeout}

frontend managers
    bind 127.0.0.1:{port}
    default_backend replicas

backend replicas
    balance {balance}
    option httpchk
    http-check send meth GET uri /healthz
    http-check expect status 200
    http-response set-header {REPLICA_HEADER} %s
{servers}
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class LoadBalancer:
    """HAProxy in front of ``backends`` (``host:port`` or ``name=host:port`` strings, or
    :class:`Backend`); use as a context manager, or ``start()`` / ``stop()``."""

    def __init__(self, backends: Sequence[str | Backend], *, balance: str = "roundrobin",
                 workdir: Path | None = None) -> None:
        if not backends:
            raise LoadBalancerError("a load balancer needs at least one backend")
        self.backends = [b if isinstance(b, Backend) else Backend.parse(b, i)
                         for i, b in enumerate(backends, start=1)]
        self.balance = balance
        self._own_dir = workdir is None
        self.dir = workdir or Path(tempfile.mkdtemp(prefix="haproxy-"))
        self.config_path = self.dir / "haproxy.cfg"
        self.admin_socket = self.dir / "admin.sock"
        self.log_path = self.dir / "haproxy.log"
        self.port = 0
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 10.0) -> LoadBalancer:
        """Start HAProxy and return once every backend is UP (or ``timeout``)."""
        binary = haproxy_binary()
        self.dir.mkdir(parents=True, exist_ok=True)
        # The port is free when chosen, not when bound: another process may take it
        # between the two, so a refused bind is tried again on a new port.
        for _attempt in range(3):
            self.port = _free_port()
            self.config_path.write_text(render_config(
                self.backends, port=self.port, admin_socket=self.admin_socket,
                balance=self.balance))
            self._check(binary)
            if self._spawn(binary, timeout):
                break
        else:
            raise LoadBalancerError(f"haproxy did not start; its log:\n{self.log_text()}")
        try:
            self.wait_states({b.name: "UP" for b in self.backends}, timeout=timeout)
        except LoadBalancerError:
            self.stop()  # a failed start leaves nothing running
            raise
        return self

    def _check(self, binary: str) -> None:
        done = subprocess.run([binary, "-c", "-q", "-f", str(self.config_path)],
                              capture_output=True, text=True, timeout=30, check=False)
        if done.returncode != 0:
            raise LoadBalancerError(f"{self.config_path}: haproxy refused the configuration: "
                                    f"{(done.stderr or done.stdout).strip()}")

    def _spawn(self, binary: str, timeout: float) -> bool:
        """Start the process; False if it exited (a taken port) before listening."""
        with self.log_path.open("ab") as sink:
            # start_new_session: its own process group, so stop() reaches any child
            # it has and a ^C at the test's terminal does not race the fixture's stop.
            self.proc = subprocess.Popen([binary, "-db", "-f", str(self.config_path)],
                                         stdin=subprocess.DEVNULL, stdout=sink,
                                         stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                self.proc = None
                return False
            with contextlib.suppress(OSError), socket.create_connection(
                    ("127.0.0.1", self.port), timeout=0.5):
                return True
            time.sleep(0.02)  # polling a condition (the port accepting) with a deadline
        log = self.log_text()  # before stop(), which may remove the folder
        self.stop()
        raise LoadBalancerError(f"haproxy did not listen within {timeout}s; its log:\n{log}")

    def stop(self) -> None:
        """Stop HAProxy (its whole process group); idempotent."""
        proc, self.proc = self.proc, None
        if proc is not None and proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=5)
        if self._own_dir:
            shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> LoadBalancer:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    # ------------------------------------------------------------------ admin socket

    def admin(self, command: str) -> str:
        """One command on HAProxy's admin socket (e.g. ``show stat``); its answer."""
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(5)
            s.connect(str(self.admin_socket))
            s.sendall(command.encode() + b"\n")
            chunks = []
            while chunk := s.recv(65536):
                chunks.append(chunk)
        return b"".join(chunks).decode()

    def _servers(self) -> list[dict[str, str]]:
        text = self.admin("show stat").lstrip("# ")
        return [row for row in csv.DictReader(io.StringIO(text))
                if row["pxname"] == "replicas" and row["svname"] not in ("BACKEND", "FRONTEND")]

    def states(self) -> dict[str, str]:
        """Each server's status as HAProxy sees it: ``UP``, ``DOWN``, ``UP 1/2``, ..."""
        return {row["svname"]: row["status"] for row in self._servers()}

    def sessions(self) -> dict[str, int]:
        """Each server's open sessions (health checks are not counted): with no request
        in flight, a server with sessions holds delegates' websockets."""
        return {row["svname"]: int(row["scur"] or 0) for row in self._servers()}

    def routes(self) -> dict[int, str]:
        """Which server each open client connection is forwarded to, by the client's
        source port: a delegate's websocket (its local port) names its replica."""
        found: dict[int, str] = {}
        for line in self.admin("show sess").splitlines():
            m = _SESSION.search(line)
            if m and m.group("server") != "<none>":
                found[int(m.group("port"))] = m.group("server")
        return found

    def wait_states(self, want: dict[str, str], timeout: float = 10.0) -> None:
        """Until each named server has the wanted status (``UP`` / ``DOWN``)."""
        deadline = time.monotonic() + timeout
        seen: dict[str, str] = {}
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError):
                seen = self.states()
                if all(seen.get(name) == status for name, status in want.items()):
                    return
            time.sleep(0.02)  # polling a condition (HAProxy's view) with a deadline
        raise LoadBalancerError(f"after {timeout}s haproxy sees {seen}, not {want}")

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
