"""A loopback HTTP endpoint for Terraform's ``http`` backend, forwarding to the manager's
Terraform state endpoints (``manager.tf_state``).

Terraform cannot sign the delegate's single-use JWTs, so it talks to this proxy, on
127.0.0.1 at a random port and under a random path (known only to the Terraform process
the step starts, through its environment, which only the delegate's user can read), and
each request it forwards carries a fresh credential. The proxy remembers the locks it
saw taken: those Terraform did not release (it was killed) are released when the step
ends."""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
import threading
from collections.abc import AsyncIterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol, runtime_checkable

import httpx

AUDIENCE = "tfstate"
_BASE = "/api/delegate/tfstate"
# Terraform's methods -> the manager's endpoint for them.
_ROUTES = {("GET", "state"): ("GET", "state"), ("POST", "state"): ("POST", "state"),
           ("LOCK", "lock"): ("POST", "lock"), ("UNLOCK", "lock"): ("POST", "unlock")}
_FORWARD_TIMEOUT = 60.0


@runtime_checkable
class ManagerCalls(Protocol):
    async def call(self, method: str, path: str, *, audience: str,
                   params: dict[str, str] | None = None,
                   content: bytes | None = None) -> httpx.Response: ...


class StateProxy:
    def __init__(self, manager: ManagerCalls, *, provisioner: str, workspace: str,
                 task_id: str) -> None:
        self.manager = manager
        self.query = {"provisioner": provisioner, "workspace": workspace, "task": task_id}
        self.key = secrets.token_urlsafe(24)
        self.held: dict[str, bytes] = {}  # lock id -> the lock info Terraform sent
        # The holder's lock info of the last lock refused (Terraform prints only its id).
        self.refused: dict[str, Any] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def environment(self) -> dict[str, str]:
        """The http backend's settings, as environment variables: a saved plan records
        the backend's configuration, and this proxy's address changes from run to run,
        so nothing of it may be in the configuration (the backend reads these when its
        configuration leaves them unset)."""
        assert self._server is not None
        base = f"http://127.0.0.1:{self._server.server_address[1]}/{self.key}"
        return {"TF_HTTP_ADDRESS": f"{base}/state", "TF_HTTP_LOCK_ADDRESS": f"{base}/lock",
                "TF_HTTP_UNLOCK_ADDRESS": f"{base}/lock", "TF_HTTP_LOCK_METHOD": "LOCK",
                "TF_HTTP_UNLOCK_METHOD": "UNLOCK", "TF_HTTP_RETRY_MAX": "3"}

    async def forward(self, method: str, what: str, query: dict[str, str],
                      body: bytes) -> tuple[int, bytes]:
        verb, endpoint = _ROUTES[(method, what)]
        params = {**self.query}
        if "ID" in query:
            params["ID"] = query["ID"]
        try:
            resp = await self.manager.call(verb, f"{_BASE}/{endpoint}", audience=AUDIENCE,
                                           params=params, content=body or None)
        except (httpx.HTTPError, RuntimeError) as exc:  # RuntimeError: client closed
            return 502, f"cannot reach the manager's state store: {exc}".encode()
        if resp.status_code == 200 and endpoint in ("lock", "unlock"):
            self._track(endpoint, body)
        if resp.status_code == 409 and endpoint == "lock":
            with contextlib.suppress(ValueError):
                self.refused = json.loads(resp.content)
        return resp.status_code, resp.content

    def holder(self) -> str | None:
        """Who holds the lock a run was refused, in words; None when none was."""
        if not isinstance(self.refused, dict):
            return None
        info = self.refused
        return (f"{info.get('Info') or 'held by another run'} ({info.get('Operation', '?')} "
                f"since {str(info.get('Created', '?'))[:19]}, lock {info.get('ID', '?')})")

    def _track(self, endpoint: str, body: bytes) -> None:
        with contextlib.suppress(ValueError, AttributeError):
            lock_id = str(json.loads(body or b"{}").get("ID"))
            if endpoint == "lock":
                self.held[lock_id] = body
            else:
                self.held.pop(lock_id, None)

    def forward_blocking(self, method: str, path: str, body: bytes) -> tuple[int, bytes]:
        """From a server thread: the forward, run on the delegate's event loop."""
        from urllib.parse import parse_qsl, urlsplit

        parts = urlsplit(path)
        segments = parts.path.strip("/").split("/")
        if len(segments) != 2 or not secrets.compare_digest(segments[0], self.key):
            return 404, b"not found"
        if (method, segments[1]) not in _ROUTES:
            return 405, f"{method} is not supported here".encode()
        assert self._loop is not None
        future = asyncio.run_coroutine_threadsafe(
            self.forward(method, segments[1], dict(parse_qsl(parts.query)), body), self._loop)
        try:
            return future.result(_FORWARD_TIMEOUT)
        except Exception as exc:  # the loop is stopping, or the manager took too long
            future.cancel()
            return 502, f"state request not forwarded: {exc!r}".encode()

    async def release_leftovers(self) -> list[str]:
        """Release the locks Terraform took and did not release; their ids."""
        released = []
        for lock_id, body in list(self.held.items()):
            # RuntimeError: the delegate is stopping and closed its client; the lock's
            # task ends with it, so the manager breaks the lock at the next run.
            with contextlib.suppress(httpx.HTTPError, RuntimeError):
                resp = await self.manager.call("POST", f"{_BASE}/unlock", audience=AUDIENCE,
                                               params=self.query, content=body)
                if resp.status_code == 200:
                    released.append(lock_id)
            self.held.pop(lock_id, None)
        return released

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[StateProxy]:
        self._loop = asyncio.get_running_loop()
        handler, server_type = _handler(self)
        self._server = server_type(("127.0.0.1", 0), handler)
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        name="tf-state-proxy", daemon=True)
        self._thread.start()
        try:
            yield self
        finally:
            server = self._server
            await asyncio.shield(asyncio.to_thread(server.shutdown))
            server.server_close()


def _handler(proxy: StateProxy) -> tuple[type[BaseHTTPRequestHandler],
                                         type[ThreadingHTTPServer]]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _forward(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            status, answer = proxy.forward_blocking(self.command, self.path, body)
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        do_GET = do_POST = do_LOCK = do_UNLOCK = do_DELETE = _forward

        def log_message(self, format: str, *args: Any) -> None:
            pass  # Terraform reports what matters; request lines would be noise

    class Server(ThreadingHTTPServer):
        daemon_threads = True

        def handle_error(self, request: Any, client_address: Any) -> None:
            pass  # a client gone mid-request (Terraform killed): nothing to answer

    return Handler, Server
