"""Real parts for end-to-end tests: the manager as a real process on a loopback port chosen
at run time, and real delegates (in-process, on the real websocket) with test task types.

Nothing here fakes the protocol: a test that passes here passed over a real socket
between the real manager and the real delegate.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import sqlite3
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx

from agent.app import Delegate
from agent.config import load_settings
from agent.context import TaskContext, TaskFailed, TaskRegistry, TaskType, load_registry

ADMIN_TOKEN = "test-admin-token-0123456789"
LISTEN_LINE = re.compile(r"manager listening on (https?://[\d.]+:\d+)")


async def wait_for(predicate: Callable[[], Any], *, timeout: float = 20.0,
                   interval: float = 0.01, what: str = "condition") -> Any:
    """Poll ``predicate`` (sync or async) until truthy; fail with ``what`` at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(interval)


def test_database(workdir: Path) -> str:
    """Where a test's manager keeps its data: a SQLite file in ``workdir``, or — with
    ``TEST_MANAGER_DB=postgresql`` — a new database on this test run's PostgreSQL server
    (testkit.postgres.shared_server), so the same tests run on both backends."""
    if os.environ.get("TEST_MANAGER_DB", "sqlite") == "postgresql":
        from testkit.postgres import shared_server

        return shared_server().database_for(str(workdir))
    return str(workdir / "manager.db")


class ManagerProcess:
    """``delegate manager serve`` in a child process, with its own database (see
    :func:`test_database`)."""

    def __init__(self, workdir: Path, *, port: int = 0, extra_args: tuple[str, ...] = (),
                 env: dict[str, str] | None = None, db: str | None = None) -> None:
        self.workdir = workdir
        self.db = db or test_database(workdir)
        self.sqlite = not self.db.startswith("postgresql://")
        self.port = port
        self.extra_args = extra_args
        self.env = env or {}
        self.proc: subprocess.Popen[str] | None = None
        self.url = ""
        self.log_path = workdir / "manager.log"

    def start(self, timeout: float = 30.0) -> None:
        env = {**os.environ, "MANAGER_ADMIN_TOKEN": ADMIN_TOKEN,
               "MANAGER_SECRET_KEY": "test-secret-key-for-manager-0123456789abcd",
               **self.env}
        args = [sys.executable, "-m", "cli", "manager", "serve", "--host", "127.0.0.1",
                "--port", str(self.port), "--db", str(self.db), *self.extra_args]
        stderr = self.log_path.open("a")
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=stderr, text=True,
                                     env=env, cwd=self.workdir)
        assert self.proc.stdout is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                break
            m = LISTEN_LINE.search(line)
            if m:
                self.url = m.group(1)
                self.port = int(self.url.rsplit(":", 1)[1])
                return
        self.stop()
        raise RuntimeError(f"manager did not start; its log:\n{self.log_path.read_text()}")

    def stop(self) -> None:
        if self.proc is None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        self.proc = None

    def kill(self) -> None:
        """Stop without a clean shutdown, as a crash would."""
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            if self.proc.stdout is not None:
                self.proc.stdout.close()
            self.proc = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def api(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=self.url, timeout=30,
                                 headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})

    def log_text(self) -> str:
        return self.log_path.read_text() if self.log_path.exists() else ""


class ManagerApi:
    """The admin HTTP API, as the CLI uses it."""

    def __init__(self, client: httpx.AsyncClient) -> None:
        self.client = client

    async def create_token(self, account: str, name: str = "test") -> str:
        r = await self.client.post("/api/tokens", json={"account_id": account, "name": name})
        r.raise_for_status()
        return str(r.json()["token"])

    async def revoke_token(self, token: str) -> None:
        token_id = token.split(".")[1]
        r = await self.client.delete(f"/api/tokens/{token_id}")
        r.raise_for_status()

    async def submit(self, task: dict[str, Any]) -> str:
        r = await self.client.post("/api/tasks", json=task)
        assert r.status_code in (200, 201), r.text
        return str(r.json()["task_id"])

    async def task(self, task_id: str) -> dict[str, Any]:
        r = await self.client.get(f"/api/tasks/{task_id}")
        r.raise_for_status()
        body: dict[str, Any] = r.json()
        return body

    async def wait_finished(self, task_id: str, timeout: float = 30.0) -> dict[str, Any]:
        finished = {"SUCCESS", "FAILED", "ABORTED", "TIMED_OUT", "LOST"}

        async def check() -> dict[str, Any] | None:
            t = await self.task(task_id)
            return t if t["status"] in finished else None

        result: dict[str, Any] = await wait_for(check, timeout=timeout, interval=0.05,
                                                what=f"task {task_id} to finish")
        return result

    async def wait_execution(self, execution_id: str, timeout: float = 90.0) -> dict[str, Any]:
        """The execution's view once it has ended (SUCCESS, FAILED, ROLLED_BACK, ABORTED)."""
        finished = {"SUCCESS", "FAILED", "ROLLED_BACK", "ABORTED"}

        async def check() -> dict[str, Any] | None:
            r = await self.client.get(f"/api/executions/{execution_id}")
            r.raise_for_status()
            view: dict[str, Any] = r.json()
            return view if view["status"] in finished else None

        result: dict[str, Any] = await wait_for(check, timeout=timeout, interval=0.1,
                                                what=f"execution {execution_id} to finish")
        return result

    async def logs(self, task_id: str) -> list[dict[str, Any]]:
        import json

        r = await self.client.get(f"/api/tasks/{task_id}/logs")
        r.raise_for_status()
        return [json.loads(line) for line in r.text.splitlines() if line.strip()]

    async def abort(self, task_id: str) -> None:
        r = await self.client.post(f"/api/tasks/{task_id}/abort")
        r.raise_for_status()

    async def delegates(self) -> list[dict[str, Any]]:
        r = await self.client.get("/api/delegates")
        r.raise_for_status()
        body = r.json()
        items: list[dict[str, Any]] = body["delegates"] if isinstance(body, dict) else body
        return items


def log_texts(entries: list[dict[str, Any]]) -> list[str]:
    """Every log line's text, in order, from a task's log entries."""
    out: list[str] = []
    for e in entries:
        if e.get("kind") == "log":
            if "lines" in e:
                out.extend(line["text"] for line in e["lines"])
            else:
                out.append(e["text"])
    return out


# ---------------------------------------------------------------------- test task types


# A flooding task stops at line ``gate_at`` until the test opens its gate, so a test can
# disrupt the connection at a known point with messages still in flight.
GATES: dict[str, tuple[asyncio.Event, asyncio.Event]] = {}


def gate(task_id: str) -> tuple[asyncio.Event, asyncio.Event]:
    """(reached, open) events of a flooding task's gate."""
    return GATES.setdefault(task_id, (asyncio.Event(), asyncio.Event()))


async def _flood(ctx: TaskContext) -> dict[str, Any]:
    n = int(ctx.params.get("lines", 1000))
    pause_every = int(ctx.params.get("pause_every", 100))
    gate_at = int(ctx.params.get("gate_at", -1))
    pad = "." * int(ctx.params.get("width", 0))
    async with ctx.log.unit("Flood") as log:
        for i in range(n):
            if i == gate_at:
                reached, opened = gate(ctx.task_id)
                reached.set()
                await opened.wait()
            log.info(f"line {i:06d}{pad}")
            if pause_every and i % pause_every == 0:
                await asyncio.sleep(float(ctx.params.get("pause", 0)))
    return {"lines": n}


async def _hang(ctx: TaskContext) -> dict[str, Any]:
    async with ctx.log.unit("Hang") as log:
        log.info("hanging")
        ctx.output["started"] = True
        await asyncio.Event().wait()
    return {}


async def _boom(ctx: TaskContext) -> dict[str, Any]:
    async with ctx.log.unit("Boom") as log:
        log.info("about to raise")
        raise RuntimeError("handler bug")


async def _fail(ctx: TaskContext) -> dict[str, Any]:
    async with ctx.log.unit("Fail"):
        raise TaskFailed(str(ctx.params.get("message", "it failed")),
                         output={"partial": "kept"})


# How many times each task id reached a handler in this process: "exactly once" is checked
# against this, not against what the manager believes.
RUNS: dict[str, int] = {}


async def _echo(ctx: TaskContext) -> dict[str, Any]:
    RUNS[ctx.task_id] = RUNS.get(ctx.task_id, 0) + 1
    async with ctx.log.unit("Echo") as log:
        for key, value in sorted(ctx.secrets.items()):
            log.info(f"secret {key} = {value}")
        big = int(ctx.params.get("big", 0))
        if big:
            log.info("z" * big)
        else:
            log.info(f"params {ctx.params}")
        delay = float(ctx.params.get("delay", 0))
        if delay:
            await asyncio.sleep(delay)
    return {"echo": ctx.params, "secrets": dict(ctx.secrets)}


def test_registry(include_builtin: bool = True) -> TaskRegistry:
    registry = load_registry() if include_builtin else TaskRegistry()
    for name, handler in [("test.flood", _flood), ("test.hang", _hang), ("test.boom", _boom),
                          ("test.fail", _fail), ("test.echo", _echo)]:
        registry.register(TaskType(name=name, handler=handler, summary=f"test {name}"))
    return registry


test_registry.__test__ = False  # type: ignore[attr-defined]  # not a test function


class DelegateRunner:
    """A real delegate in this process, connected over a real websocket."""

    def __init__(self, manager_url: str, token: str, *, account: str = "acme",
                 name: str = "d1", tags: tuple[str, ...] = (), capacity: int = 4,
                 registry: TaskRegistry | None = None, **overrides: Any) -> None:
        settings = load_settings(
            account_id=account, delegate_token=token, delegate_name=name,
            delegate_tags=list(tags), manager_url=manager_url, max_concurrent_tasks=capacity,
            **overrides,
        )
        self.delegate = Delegate(settings, registry or test_registry(), reconnect_min=0.05)
        self.task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> DelegateRunner:
        self.task = asyncio.create_task(self.delegate.run())
        return self

    async def registered(self, timeout: float = 20.0) -> None:
        await wait_for(lambda: self.delegate.session.registered.is_set() or self.failed(),
                       timeout=timeout, what="delegate to register")
        if self.failed():
            assert self.task is not None
            raise AssertionError(f"delegate stopped: {self.task.exception()!r}")

    def failed(self) -> bool:
        return self.task is not None and self.task.done()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def stop(self) -> None:
        if self.task is None:
            return
        if not self.task.done():
            for task_id in self.delegate.runner.running_ids():
                self.delegate.runner.abort(task_id, "test ending")
            await self.delegate.session.stop()
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await asyncio.wait_for(self.task, timeout=10)
        self.task = None


@contextlib.asynccontextmanager
async def running_manager(workdir: Path, **kw: Any) -> AsyncIterator[ManagerProcess]:
    manager = ManagerProcess(workdir, **kw)
    await asyncio.to_thread(manager.start)
    try:
        yield manager
    finally:
        await asyncio.to_thread(manager.stop)



def dump_database(target: str | Path) -> str:
    """Everything a manager's database holds, as text (to check what is not in it):
    SQLite's dump of the file, or every row of every table on PostgreSQL."""
    text = str(target)
    if not text.startswith("postgresql://"):
        con = sqlite3.connect(text)
        try:
            return "\n".join(con.iterdump())
        finally:
            con.close()
    import psycopg

    with psycopg.connect(text) as con:
        tables = [r[0] for r in con.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'")]
        out = []
        for table in tables:
            for row in con.execute(f'SELECT * FROM "{table}"'):
                out.append(f"{table}: {row!r}")
        return "\n".join(out)


# ---------------------------------------------------------------------- replicas (issue 14)


@contextlib.asynccontextmanager
async def running_replicas(workdir: Path, count: int, *, db: str | None = None,
                           **kw: Any) -> AsyncIterator[list[ManagerProcess]]:
    """``count`` managers on ONE database, each on its own port with its own folder
    (``workdir/replica-<i>``, for its log). The database is ``db``, else a new one on this
    test run's PostgreSQL server: replicas need PostgreSQL whatever TEST_MANAGER_DB says."""
    if db is None:
        from testkit.postgres import shared_server

        db = await asyncio.to_thread(shared_server().database_for, str(workdir))
    replicas: list[ManagerProcess] = []
    try:
        # One after the other: the first runs the migrations, the others find them done.
        for i in range(1, count + 1):
            folder = workdir / f"replica-{i}"
            folder.mkdir(parents=True, exist_ok=True)
            replica = ManagerProcess(folder, db=db, **kw)
            replicas.append(replica)
            await asyncio.to_thread(replica.start)
        yield replicas
    finally:
        for replica in replicas:
            await asyncio.to_thread(replica.stop)
