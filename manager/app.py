"""Building and running the manager: ``create_app`` for ASGI, ``ManagerServer`` to run
it in-process on a socket we bind ourselves (so ``--port 0`` works), ``serve`` for the
CLI."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import structlog
import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from manager import (
    api,
    definitions_api,
    delegate_http,
    instances_api,
    rerun,
    tf_state,
    timers,
    upkeep,
    validation,
    ws,
)
from manager import lookups as lookups_api
from manager import ui as console
from manager.db import DatabaseUnavailable, now
from manager.http_guard import guarded_protocol
from manager.retention import prune
from manager.settings import Settings
from manager.state import State
from wire.protocol import MAX_MESSAGE_BYTES, Disconnect

log = structlog.get_logger("manager")
_PRUNE_EVERY = 60.0


def _watch_once(st: State) -> None:
    """One pass: every replica beats and watches its own sessions; what must happen once
    across replicas (leases, sweeping dead replicas, retention) runs where its timer is
    claimed (manager.timers)."""
    hub, rid, every = st.hub, st.bus.replica_id, st.settings.watchdog_interval
    if not hub.replicas.beat():
        # Another replica swept this one (it stalled past the TTL): the database no
        # longer routes to these sessions, so let their delegates come back afresh.
        upkeep.close_all(hub, "the manager replica lost its place; reconnect", 1012)
    upkeep.check_sessions(hub)
    if timers.due(st.db, "leases", rid, every * 0.9):
        upkeep.check_leases(hub)
        upkeep.sweep(hub)
    # A wake-up lost while a replica re-made its listening connection costs one pass.
    hub.dispatch()
    # A short retention (tests, small installs) is honoured promptly too.
    if timers.due(st.db, "retention", rid, min(_PRUNE_EVERY, st.settings.retention)):
        pruned = prune(st.db, now() - st.settings.retention)
        if pruned:
            log.info("pruned finished tasks", tasks=pruned)


async def _watchdog(st: State) -> None:
    while True:
        try:
            _watch_once(st)
        except Exception:
            log.exception("watchdog pass failed")
        await asyncio.sleep(st.settings.watchdog_interval)


async def _database_unavailable(_request: Request, exc: Exception) -> JSONResponse:
    return JSONResponse({"detail": f"{exc}; try again shortly"}, status_code=503,
                        headers={"Retry-After": "1"})


def create_app(settings: Settings) -> FastAPI:
    st = State.open(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        listener = asyncio.create_task(st.bus.listen(), name="manager-bus")
        upkeep.recover(st.hub)
        st.executions.resume()
        watchdog = asyncio.create_task(_watchdog(st), name="manager-watchdog")
        instance_timer = asyncio.create_task(instance_sync.run(), name="instance-sync")
        try:
            yield
        finally:
            for task in (watchdog, instance_timer, listener):
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            for session in list(st.hub.sessions.values()):
                session.send(Disconnect(reason="manager shutting down", fatal=False))
                session.close(1012, "manager shutting down")
            upkeep.leave(st.hub)
            st.db.close()

    app = FastAPI(
        title="ecs-delegate reference manager",
        version="1",
        description="Tasks, executions, delegates, tokens, the file store and the log "
                    "service. Admin endpoints take `Authorization: Bearer <admin token>`; "
                    "`/api/delegate/*` takes a delegate JWT. See docs/api.md.",
        lifespan=lifespan,
    )
    app.state.manager = st
    app.state.hub = st.hub
    app.include_router(api.router)
    app.include_router(lookups_api.router)
    instance_sync = instances_api.install(app, st)
    app.include_router(definitions_api.router)
    app.include_router(rerun.router)
    app.include_router(delegate_http.router)
    for tf_router in tf_state.routers:  # Terraform state for steps without a backend
        app.include_router(tf_router)
    app.include_router(ws.router)
    app.include_router(console.router)  # the web console, /ui/
    validation.install(app)
    app.add_exception_handler(DatabaseUnavailable, _database_unavailable)

    @app.get("/healthz", tags=["health"])
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    return app


class _Server(uvicorn.Server):
    """uvicorn's server, telling us when it accepts connections."""

    def __init__(self, config: uvicorn.Config, *, handle_signals: bool = True) -> None:
        super().__init__(config)
        self.ready = asyncio.Event()
        self.handle_signals = handle_signals

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        # Embedded (the demo, tests), the host program owns SIGINT/SIGTERM: uvicorn
        # would otherwise swallow Ctrl-C and stop only the manager.
        if self.handle_signals:
            with super().capture_signals():
                yield
        else:
            yield

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=sockets)
        if self.started:
            self.ready.set()


class ManagerServer:
    def __init__(self, settings: Settings, *, host: str = "127.0.0.1", port: int = 0,
                 tls_cert: Path | None = None, tls_key: Path | None = None,
                 handle_signals: bool = False) -> None:
        self.settings = settings
        self.host = host
        self.port = port
        self.tls = tls_cert is not None
        self.app = create_app(settings)
        self.state: State = self.app.state.manager
        self._sock = _bind(host, port)
        self.port = self._sock.getsockname()[1]
        config = uvicorn.Config(
            self.app, log_config=None, access_log=False, lifespan="on",
            http=guarded_protocol(settings.header_timeout, settings.max_connections_per_client),
            timeout_keep_alive=int(max(1, settings.keep_alive_timeout)),
            ws="websockets-sansio",
            # Frames up to 4x the protocol limit reach the hub, which answers an
            # oversized one with an Error and keeps the session.
            ws_max_size=4 * MAX_MESSAGE_BYTES,
            # The manager pings too: a delegate whose socket stops answering is dropped
            # (and the hub closes a session that sends nothing past the lease).
            ws_ping_interval=settings.heartbeat_interval, ws_ping_timeout=settings.lease_ttl,
            ssl_certfile=str(tls_cert) if tls_cert else None,
            ssl_keyfile=str(tls_key) if tls_key else None,
            ssl_version=ssl.PROTOCOL_TLS_SERVER, timeout_graceful_shutdown=5)
        self._server = _Server(config, handle_signals=handle_signals)
        self._task: asyncio.Task[None] | None = None

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{'https' if self.tls else 'http'}://{host}:{self.port}"

    async def start(self) -> str:
        self._task = asyncio.create_task(self._server.serve(sockets=[self._sock]),
                                         name="manager-server")
        ready = asyncio.create_task(self._server.ready.wait())
        await asyncio.wait({self._task, ready}, return_when=asyncio.FIRST_COMPLETED)
        if not ready.done():
            ready.cancel()
            await self._task  # raises what stopped the server from starting
            raise RuntimeError("the manager stopped during start-up")
        return self.url

    async def wait(self) -> None:
        if self._task is not None:
            await self._task

    async def stop(self) -> None:
        self._server.should_exit = True
        if self._task is not None:
            await self._task
        self._sock.close()


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP explicitly: asyncio sets TCP_NODELAY only on sockets whose proto says
    # TCP, and accepted sockets inherit it. Without it, Nagle plus delayed ACKs held
    # some HTTP answers for ~40 ms (the p99 of submit -> task start).
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(512)
    sock.setblocking(False)
    return sock


async def serve(settings: Settings, *, host: str = "127.0.0.1", port: int = 8080,
                tls_cert: Path | None = None, tls_key: Path | None = None,
                announce: Callable[[str], None] = print) -> None:
    server = ManagerServer(settings, host=host, port=port, tls_cert=tls_cert, tls_key=tls_key,
                           handle_signals=True)
    url = await server.start()
    announce(f"manager listening on {url}")
    await server.wait()
